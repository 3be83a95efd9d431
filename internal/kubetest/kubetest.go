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
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/kubeapiserver"
	"github.com/bgpfabric/bgpfabric/internal/testport"
)

// ReadyTimeout bounds the wait for the API server to be ready.
const ReadyTimeout = kubeapiserver.ReadyTimeout

// EnvBinary names the environment variable that overrides where the
// kube-apiserver binary is.
const EnvBinary = kubeapiserver.EnvBinary

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
	path, tried := kubeapiserver.Find("")
	if path != "" {
		return path
	}
	msg := fmt.Sprintf("kubetest: no kube-apiserver at %q (scripts/kube-apiserver.sh builds it; make test runs that)", tried)
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + ", and CI=true forbids skipping")
	}
	tb.Skip(msg + "; set CI=true to fail instead of skipping")
	return ""
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

	s := &APIServer{tb: tb, binary: bin, dir: dir, tokens: map[string]string{Admin: kubeapiserver.NewToken(), Unprivileged: kubeapiserver.NewToken()}}
	f, err := kubeapiserver.WriteFiles(dir, []kubeapiserver.Token{
		{Token: s.tokens[Admin], User: Admin, Groups: "system:masters"},
		{Token: s.tokens[Unprivileged], User: Unprivileged},
	})
	if err != nil {
		tb.Fatalf("kubetest: writing certificates and keys: %v", err)
	}
	s.CA = f.CAPEM
	port := testport.Pick(tb)
	s.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	s.args = kubeapiserver.Args(f, etcd.ClientEndpoint(), port, filepath.Join(dir, "certs"))
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

// waitReady waits until /readyz answers ok or the process exits.
func (s *APIServer) waitReady(exited <-chan struct{}) error {
	return kubeapiserver.WaitReady(context.Background(), s.URL, s.CA, s.tokens[Admin], exited)
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
	cfg := kubeapiserver.Kubeconfig(s.URL, filepath.Join(s.dir, "ca.crt"), user, s.tokens[user])
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}
