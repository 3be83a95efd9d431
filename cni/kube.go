package cni

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"sigs.k8s.io/yaml"
)

// The plugin reads a pod from the Kubernetes API server with one plain
// HTTPS GET, not with client-go: the plugin is a mode of the node binary,
// and client-go's packages alone would double that binary and raise every
// one of its processes' memory (docs/kubernetes.md).

// kubeTimeout bounds the GET of a pod (within the call's own timeout).
const kubeTimeout = 10 * time.Second

// maxPodSize bounds the pod document read from the API server.
const maxPodSize = 4 << 20

// kubeconfig is the part of a kubeconfig file the plugin uses.
type kubeconfig struct {
	CurrentContext string `json:"current-context"`
	Clusters       []struct {
		Name    string `json:"name"`
		Cluster struct {
			Server                   string `json:"server"`
			CertificateAuthority     string `json:"certificate-authority"`
			CertificateAuthorityData string `json:"certificate-authority-data"`
			InsecureSkipTLSVerify    bool   `json:"insecure-skip-tls-verify"`
			TLSServerName            string `json:"tls-server-name"`
		} `json:"cluster"`
	} `json:"clusters"`
	Users []struct {
		Name string `json:"name"`
		User struct {
			Token                 string          `json:"token"`
			TokenFile             string          `json:"tokenFile"`
			ClientCertificate     string          `json:"client-certificate"`
			ClientCertificateData string          `json:"client-certificate-data"`
			ClientKey             string          `json:"client-key"`
			ClientKeyData         string          `json:"client-key-data"`
			Exec                  json.RawMessage `json:"exec"`
			AuthProvider          json.RawMessage `json:"auth-provider"`
			Username              string          `json:"username"`
		} `json:"user"`
	} `json:"users"`
	Contexts []struct {
		Name    string `json:"name"`
		Context struct {
			Cluster string `json:"cluster"`
			User    string `json:"user"`
		} `json:"context"`
	} `json:"contexts"`
}

// kubeClient reads pods from one API server.
type kubeClient struct {
	server string // https://host:port, no trailing slash
	token  string
	hc     *http.Client
}

// kubeconfigError is a configuration error (code 7) about the kubeconfig
// file, naming the field of the network configuration and the file's own
// field.
func kubeconfigError(path, format string, args ...any) *types.Error {
	return configError("kubernetes.kubeconfig", "%s: %s", path, fmt.Sprintf(format, args...))
}

// loadKubeconfig reads the kubeconfig file at path and builds a client for
// its current context: the cluster's server and CA, the user's bearer
// token (token or tokenFile) or client certificate. Paths in the file are
// relative to its directory, as kubectl reads them. exec and
// auth-provider users are refused (the plugin runs no commands).
func loadKubeconfig(path string) (*kubeClient, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, configError("kubernetes.kubeconfig", "%v", err)
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(b, &kc); err != nil {
		return nil, kubeconfigError(path, "not a kubeconfig: %v", err)
	}
	dir := filepath.Dir(path)
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	cur := kc.CurrentContext
	if cur == "" {
		return nil, kubeconfigError(path, "current-context is not set")
	}
	ci := -1
	for i, c := range kc.Contexts {
		if c.Name == cur {
			ci = i
		}
	}
	if ci < 0 {
		return nil, kubeconfigError(path, "current-context %q names no entry of contexts", cur)
	}
	ctxt := kc.Contexts[ci].Context
	cl := -1
	for i, c := range kc.Clusters {
		if c.Name == ctxt.Cluster {
			cl = i
		}
	}
	if cl < 0 {
		return nil, kubeconfigError(path, "contexts[%d].context.cluster %q names no entry of clusters", ci, ctxt.Cluster)
	}
	cluster := kc.Clusters[cl].Cluster
	fp := func(f string) string { return fmt.Sprintf("clusters[%d].cluster.%s", cl, f) }
	u, err := url.Parse(cluster.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, kubeconfigError(path, "%s: %q must be an https:// URL", fp("server"), cluster.Server)
	}
	tc := &tls.Config{ServerName: cluster.TLSServerName, InsecureSkipVerify: cluster.InsecureSkipTLSVerify} //nolint:gosec // the kubeconfig's own choice
	var caPEM []byte
	switch {
	case cluster.CertificateAuthorityData != "":
		if caPEM, err = base64.StdEncoding.DecodeString(cluster.CertificateAuthorityData); err != nil {
			return nil, kubeconfigError(path, "%s: not base64: %v", fp("certificate-authority-data"), err)
		}
	case cluster.CertificateAuthority != "":
		if caPEM, err = os.ReadFile(rel(cluster.CertificateAuthority)); err != nil {
			return nil, kubeconfigError(path, "%s: %v", fp("certificate-authority"), err)
		}
	}
	if caPEM != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, kubeconfigError(path, "%s: no PEM certificate in it", fp("certificate-authority"))
		}
		tc.RootCAs = pool
	}
	k := &kubeClient{server: strings.TrimSuffix(cluster.Server, "/")}
	ui := -1
	for i, us := range kc.Users {
		if us.Name == ctxt.User {
			ui = i
		}
	}
	if ctxt.User != "" && ui < 0 {
		return nil, kubeconfigError(path, "contexts[%d].context.user %q names no entry of users", ci, ctxt.User)
	}
	if ui >= 0 {
		user := kc.Users[ui].User
		up := func(f string) string { return fmt.Sprintf("users[%d].user.%s", ui, f) }
		switch {
		case len(user.Exec) > 0 && string(user.Exec) != "null":
			return nil, kubeconfigError(path, "%s: credential plugins are not supported: use a token or a client certificate", up("exec"))
		case len(user.AuthProvider) > 0 && string(user.AuthProvider) != "null":
			return nil, kubeconfigError(path, "%s: auth providers are not supported: use a token or a client certificate", up("auth-provider"))
		case user.Username != "":
			return nil, kubeconfigError(path, "%s: basic authentication is not supported: use a token or a client certificate", up("username"))
		}
		k.token = user.Token
		if k.token == "" && user.TokenFile != "" {
			t, err := os.ReadFile(rel(user.TokenFile))
			if err != nil {
				return nil, kubeconfigError(path, "%s: %v", up("tokenFile"), err)
			}
			k.token = strings.TrimSpace(string(t))
		}
		certPEM, keyPEM := []byte(user.ClientCertificateData), []byte(user.ClientKeyData)
		for _, d := range []struct {
			field, data, file string
			out               *[]byte
		}{
			{"client-certificate", user.ClientCertificateData, user.ClientCertificate, &certPEM},
			{"client-key", user.ClientKeyData, user.ClientKey, &keyPEM},
		} {
			switch {
			case d.data != "":
				if *d.out, err = base64.StdEncoding.DecodeString(d.data); err != nil {
					return nil, kubeconfigError(path, "%s: not base64: %v", up(d.field+"-data"), err)
				}
			case d.file != "":
				if *d.out, err = os.ReadFile(rel(d.file)); err != nil {
					return nil, kubeconfigError(path, "%s: %v", up(d.field), err)
				}
			default:
				*d.out = nil
			}
		}
		if (certPEM == nil) != (keyPEM == nil) {
			return nil, kubeconfigError(path, "%s and client-key must be given together", up("client-certificate"))
		}
		if certPEM != nil {
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				return nil, kubeconfigError(path, "%s: %v", up("client-certificate"), err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
	}
	k.hc = &http.Client{Timeout: kubeTimeout, Transport: &http.Transport{
		TLSClientConfig:     tc,
		DialContext:         (&net.Dialer{Timeout: kubeTimeout}).DialContext,
		TLSHandshakeTimeout: kubeTimeout,
		Proxy:               nil, // an API server is reached directly, as the kubelet does
	}}
	return k, nil
}

// pod is the part of a Pod the plugin uses.
type pod struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		ServiceAccountName string `json:"serviceAccountName"`
		NodeName           string `json:"nodeName"`
	} `json:"spec"`
}

// errKubeUnavailable marks an API server that could not be reached or
// answered with a server error: the ADD may succeed later (code 11).
var errKubeUnavailable = errors.New("Kubernetes API server unavailable")

// getPod reads pod namespace/name. Errors name the API server and the
// pod; an unreachable server wraps errKubeUnavailable.
func (k *kubeClient) getPod(ctx context.Context, namespace, name string) (*pod, error) {
	what := fmt.Sprintf("reading pod %s/%s from the Kubernetes API server %s", namespace, name, k.server)
	ctx, cancel := context.WithTimeout(ctx, kubeTimeout)
	defer cancel()
	u := k.server + "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods/" + url.PathEscape(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("Accept", "application/json")
	if k.token != "" {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, errKubeUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPodSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", what, errKubeUnavailable, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, fmt.Errorf("%s: %w: %s", what, errKubeUnavailable, statusMessage(resp, body))
	default:
		return nil, fmt.Errorf("%s: %s", what, statusMessage(resp, body))
	}
	if len(body) > maxPodSize {
		return nil, fmt.Errorf("%s: the pod is larger than %d bytes", what, maxPodSize)
	}
	var p pod
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%s: decoding: %w", what, err)
	}
	return &p, nil
}

// statusMessage renders an API server's error answer: its HTTP status
// and the message of its Status object, if any.
func statusMessage(resp *http.Response, body []byte) string {
	var st struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		return resp.Status + ": " + st.Message
	}
	return resp.Status
}
