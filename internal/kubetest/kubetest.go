// Package kubetest runs a real kube-apiserver for a test: built from
// source by scripts/kube-apiserver.sh (make test runs it) into
// .cache/k8s/kube-apiserver, started on loopback against its own embedded
// etcd (on a loopback TCP port the kernel picks) with the flags a lone API
// server needs, and stopped, with everything it wrote, when the test ends.
//
// No controller-manager or kubelet runs: namespaces are never finalized
// after deletion, pods stay Pending (a test sets their status), and the
// ServiceAccount admission plugin is disabled since nobody creates the
// default service accounts.
package kubetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/testport"
)

// Timeouts, generous for a loaded two-core machine (the API server is
// ready in 2 to 4 s on an idle one).
const (
	ReadyTimeout = 2 * time.Minute
)

// EnvBinary names the environment variable that overrides where the
// kube-apiserver binary is.
const EnvBinary = "BGPFABRIC_KUBE_APISERVER"

// Users of the token file: Admin is in system:masters (every permission);
// Unprivileged has none until a test binds it a role.
const (
	Admin        = "kubetest-admin"
	Unprivileged = "kubetest-unprivileged"
)

// Binary returns the path of the kube-apiserver binary: $BGPFABRIC_KUBE_APISERVER,
// or .cache/k8s/kube-apiserver in the repository. When it is missing, tb
// skips, or fails when CI is "true"; with -short it always skips.
func Binary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("kubetest: runs kube-apiserver: not run with -short")
	}
	path := os.Getenv(EnvBinary)
	if path == "" {
		root, err := repoRoot()
		if err == nil {
			path = filepath.Join(root, ".cache", "k8s", "kube-apiserver")
		}
	}
	if path != "" {
		if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return path
		}
	}
	msg := fmt.Sprintf("kubetest: no kube-apiserver at %q (scripts/kube-apiserver.sh builds it; make test runs that)", path)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + ", and CI=true forbids skipping")
	}
	tb.Skip(msg + "; set CI=true to fail instead of skipping")
	return ""
}

// repoRoot finds the directory of bgpfabric's go.mod above the working
// directory (a test runs in its package's directory).
func repoRoot() (string, error) {
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

// APIServer is a running kube-apiserver.
type APIServer struct {
	// URL is https://127.0.0.1:<port>.
	URL string
	// CA is the PEM of the CA that signed the serving certificate.
	CA []byte

	tb     testing.TB
	binary string
	dir    string
	args   []string
	tokens map[string]string // user -> token

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts kube-apiserver with its own etcd; both stop when the test
// ends.
func Start(tb testing.TB) *APIServer {
	tb.Helper()
	bin := Binary(tb)
	dir, err := os.MkdirTemp("", "kubetest")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })

	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	etcd, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{
		DataDir: filepath.Join(dir, "etcd"), Listen: "http://127.0.0.1:0",
		Logger: slog.New(slog.DiscardHandler), CompactionRetention: -1,
	})
	if err != nil {
		tb.Fatalf("kubetest: starting the API server's etcd: %v", err)
	}
	tb.Cleanup(func() { etcd.Close() })

	s := &APIServer{tb: tb, binary: bin, dir: dir, tokens: map[string]string{Admin: newToken(), Unprivileged: newToken()}}
	f, err := writeFiles(dir, []tokenEntry{
		{s.tokens[Admin], Admin, "system:masters"},
		{s.tokens[Unprivileged], Unprivileged, ""},
	})
	if err != nil {
		tb.Fatalf("kubetest: writing certificates and keys: %v", err)
	}
	s.CA = f.caPEM
	port := testport.Pick(tb)
	s.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	s.args = []string{
		"--etcd-servers=" + etcd.ClientEndpoint(),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + f.servingCert,
		"--tls-private-key-file=" + f.servingKey,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + f.saPub,
		"--service-account-signing-key-file=" + f.saKey,
		"--token-auth-file=" + f.tokens,
		"--authorization-mode=RBAC",
		"--endpoint-reconciler-type=none",
		"--disable-admission-plugins=ServiceAccount",
		"--service-cluster-ip-range=10.96.0.0/16",
		// As kubeadm's clusters: node agents (deploy/bgpfabric-node.yaml)
		// run privileged.
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--cert-dir=" + filepath.Join(dir, "certs"),
	}
	tb.Cleanup(s.stop)
	s.start()
	return s
}

// start runs the binary and waits until /readyz answers ok.
func (s *APIServer) start() {
	s.tb.Helper()
	logf, err := os.OpenFile(filepath.Join(s.dir, "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.binary, s.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, killed with the test binary if that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("kubetest: starting %s: %v", s.binary, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := s.waitReady(done); err != nil {
		s.stop()
		s.tb.Fatalf("kubetest: kube-apiserver not ready: %v\n%s", err, s.logTail())
	}
}

// waitReady polls /readyz (the API server offers no other signal) until it
// answers 200, the process exits or ReadyTimeout passes.
func (s *APIServer) waitReady(exited <-chan struct{}) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := "no answer yet"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+s.tokens[Admin])
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
			return fmt.Errorf("after %v: %s", ReadyTimeout, last)
		case <-tick.C:
		}
	}
}

// stop kills the process and waits for it: the API server keeps no state
// of its own (etcd has it all), and a graceful shutdown waits for its
// watches for up to a minute.
func (s *APIServer) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// Stop stops the API server (its etcd keeps running); Restart starts it
// again on the same port with the same data.
func (s *APIServer) Stop() { s.stop() }

// Restart starts a stopped API server again and waits until it is ready.
func (s *APIServer) Restart() {
	s.tb.Helper()
	s.stop()
	s.start()
}

// logTail returns the end of the API server's log, for failures.
func (s *APIServer) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "kube-apiserver.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Config returns a client configuration for user (Admin or Unprivileged).
func (s *APIServer) Config(user string) *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     s.tokens[user],
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CA},
		QPS:             -1, // no client-side rate limit in tests
	}
}

// Client returns a clientset for Admin.
func (s *APIServer) Client(tb testing.TB) kubernetes.Interface {
	tb.Helper()
	c, err := kubernetes.NewForConfig(s.Config(Admin))
	if err != nil {
		tb.Fatalf("kubetest: client: %v", err)
	}
	return c
}

// Kubeconfig writes a kubeconfig file for user into the test's directory
// and returns its path.
func (s *APIServer) Kubeconfig(tb testing.TB, user string) string {
	tb.Helper()
	path := filepath.Join(s.dir, user+".kubeconfig")
	ca := filepath.Join(s.dir, "ca.crt")
	if err := os.WriteFile(ca, s.CA, 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubetest
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    token: %s
contexts:
- name: kubetest
  context:
    cluster: kubetest
    user: %s
current-context: kubetest
`, s.URL, ca, user, s.tokens[user], user)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
