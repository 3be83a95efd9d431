// Package kuberest is a small client of the Kubernetes API server's REST
// interface: a kubeconfig reader (current context; server, CA, bearer
// token or client certificate) and JSON requests. It exists so that the
// node binary (the CNI plugin, the simulator) can talk to an API server
// without linking client-go, which would double that binary and raise
// every one of its processes' memory (docs/kubernetes.md); the
// kube-controllers binary uses client-go.
package kuberest

import (
	"bytes"
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

	"sigs.k8s.io/yaml"
)

// Timeout bounds one request.
const Timeout = 10 * time.Second

// maxBody bounds a response body read.
const maxBody = 8 << 20

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

// Client talks to one API server.
type Client struct {
	server string // https://host:port, no trailing slash
	token  string
	hc     *http.Client
}

// KubeconfigError is an error in a kubeconfig file; its message names the
// file and the field.
type KubeconfigError struct {
	Path string
	Msg  string
}

func (e *KubeconfigError) Error() string { return e.Path + ": " + e.Msg }

func kubeconfigError(path, format string, args ...any) error {
	return &KubeconfigError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Load reads the kubeconfig file at path and builds a client for
// its current context: the cluster's server and CA, the user's bearer
// token (token or tokenFile) or client certificate. Paths in the file are
// relative to its directory, as kubectl reads them. exec and
// auth-provider users are refused (the plugin runs no commands).
func Load(path string) (*Client, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
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
	k := &Client{server: strings.TrimSuffix(cluster.Server, "/")}
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
	k.hc = newHTTPClient(tc)
	return k, nil
}

func newHTTPClient(tc *tls.Config) *http.Client {
	return &http.Client{Timeout: Timeout, Transport: &http.Transport{
		TLSClientConfig:     tc,
		DialContext:         (&net.Dialer{Timeout: Timeout}).DialContext,
		TLSHandshakeTimeout: Timeout,
		Proxy:               nil, // an API server is reached directly, as the kubelet does
		MaxIdleConnsPerHost: 4,
	}}
}

// Config is an API server and credentials, for New.
type Config struct {
	Server string // https://host:port
	CA     []byte // PEM
	Token  string
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("API server %q must be an https:// URL", cfg.Server)
	}
	tc := &tls.Config{}
	if cfg.CA != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CA) {
			return nil, errors.New("no PEM certificate in the CA")
		}
		tc.RootCAs = pool
	}
	return &Client{server: strings.TrimSuffix(cfg.Server, "/"), token: cfg.Token, hc: newHTTPClient(tc)}, nil
}

// Server is the API server's URL.
func (k *Client) Server() string { return k.server }

// Close releases idle connections.
func (k *Client) Close() { k.hc.CloseIdleConnections() }

// ErrUnavailable marks an API server that could not be reached or
// answered with a server error (5xx, 429): the request may succeed later.
var ErrUnavailable = errors.New("Kubernetes API server unavailable")

// StatusError is an API server's answer other than 2xx.
type StatusError struct {
	Code    int    // HTTP status
	Status  string // HTTP status text
	Reason  string // Status.reason: NotFound, AlreadyExists, Conflict, ...
	Message string // Status.message
}

func (e *StatusError) Error() string {
	if e.Message != "" {
		return e.Status + ": " + e.Message
	}
	return e.Status
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return statusCode(err) == http.StatusNotFound }

// IsAlreadyExists reports whether err is a 409 AlreadyExists answer.
func IsAlreadyExists(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusConflict && se.Reason == "AlreadyExists"
}

func statusCode(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// Do sends a request to path (e.g. /api/v1/namespaces/ns/pods/name) with
// in, if not nil, as its JSON body (or, for PATCH, a JSON merge patch),
// and decodes a 2xx answer into out, if not nil. Other answers are a
// *StatusError; an unreachable server or a 5xx or 429 answer wraps
// ErrUnavailable.
func (k *Client) Do(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.server+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		ct := "application/json"
		if method == http.MethodPatch {
			ct = "application/merge-patch+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if k.token != "" {
		req.Header.Set("Authorization", "Bearer "+k.token)
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		se := &StatusError{Code: resp.StatusCode, Status: resp.Status}
		var st struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		}
		if json.Unmarshal(b, &st) == nil {
			se.Reason, se.Message = st.Reason, st.Message
		}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return fmt.Errorf("%w: %w", ErrUnavailable, se)
		}
		return se
	}
	if len(b) > maxBody {
		return fmt.Errorf("the answer is larger than %d bytes", maxBody)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding the answer: %w", err)
		}
	}
	return nil
}

// PodPath is the path of a pod.
func PodPath(namespace, name string) string {
	return "/api/v1/namespaces/" + url.PathEscape(namespace) + "/pods/" + url.PathEscape(name)
}
