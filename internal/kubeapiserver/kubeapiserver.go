// Package kubeapiserver prepares and watches a lone kube-apiserver, as the
// Kubernetes tests (internal/kubetest) and the simulator's topologies with
// an API server (sim, `kubernetes:`) run it: certificates and tokens
// (WriteFiles), its flags (Args), readiness (WaitReady) and kubeconfig
// files (Kubeconfig). Starting and stopping the process is the caller's:
// a test owns it directly, the simulator records it in its run state.
// It imports no Kubernetes package (the simulator is part of the node
// binary, docs/kubernetes.md).
package kubeapiserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// EnvBinary names the environment variable that overrides where the
// kube-apiserver binary is.
const EnvBinary = "BGPFABRIC_KUBE_APISERVER"

// ReadyTimeout bounds WaitReady, generous for a loaded two-core machine
// (the API server is ready in 2 to 4 s on an idle one, 5 to 15 s loaded).
const ReadyTimeout = 2 * time.Minute

// Find returns the kube-apiserver binary: $BGPFABRIC_KUBE_APISERVER, else
// .cache/k8s/kube-apiserver in the bgpfabric repository above the working
// directory (where `make kube-apiserver` builds it), else kube-apiserver
// beside exe (the bgpfabric binary), else "" and what was tried.
func Find(exe string) (string, []string) {
	var tried []string
	try := func(p string) bool {
		tried = append(tried, p)
		st, err := os.Stat(p)
		return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
	}
	if p := os.Getenv(EnvBinary); p != "" {
		if try(p) {
			return p, tried
		}
		return "", tried // an explicit choice is not second-guessed
	}
	if root, err := RepoRoot(); err == nil {
		if p := filepath.Join(root, ".cache", "k8s", "kube-apiserver"); try(p) {
			return p, tried
		}
	}
	if exe != "" {
		if p := filepath.Join(filepath.Dir(exe), "kube-apiserver"); try(p) {
			return p, tried
		}
	}
	return "", tried
}

// RepoRoot finds the directory of bgpfabric's go.mod above the working
// directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/bgpfabric/bgpfabric\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("bgpfabric's go.mod not found")
		}
		dir = parent
	}
}

// Args are the flags of a lone kube-apiserver on 127.0.0.1:port against
// etcdServers, with the files f: RBAC, the token file, no endpoint
// reconciler, and no ServiceAccount admission (nobody creates the default
// service accounts without a controller-manager).
func Args(f *Files, etcdServers string, port int, certDir string) []string {
	return []string{
		"--etcd-servers=" + etcdServers,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + f.ServingCert,
		"--tls-private-key-file=" + f.ServingKey,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + f.SAPub,
		"--service-account-signing-key-file=" + f.SAKey,
		"--token-auth-file=" + f.Tokens,
		"--authorization-mode=RBAC",
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=ServiceAccount",
		"--service-cluster-ip-range=10.96.0.0/16",
		// As kubeadm's clusters: node agents (deploy/bgpfabric-node.yaml)
		// run privileged.
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--cert-dir=" + certDir,
	}
}

// WaitReady polls url's /readyz (the API server offers no other signal)
// until it answers 200, exited is closed, ctx ends or ReadyTimeout passes.
func WaitReady(ctx context.Context, url string, ca []byte, token string, exited <-chan struct{}) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			return errors.New("kube-apiserver exited")
		case <-ctx.Done():
			return fmt.Errorf("not ready: %s", last)
		case <-tick.C:
		}
	}
}

// Kubeconfig is a kubeconfig for server (CA file caPath) as user with a
// bearer token.
func Kubeconfig(server, caPath, user, token string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: bgpfabric
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: bgpfabric
  context:
    cluster: bgpfabric
    user: %s
current-context: bgpfabric
`, server, caPath, user, token, user)
}
