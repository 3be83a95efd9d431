package observe

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	s := New()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "bgpfabric_test_total", Help: "test"})
	s.Registry().MustRegister(c)
	c.Add(3)
	var ready atomic.Bool
	s.AddLiveness("felix", func() error { return nil })
	s.AddReadiness("felix", func() error {
		if !ready.Load() {
			return errors.New("no snapshot yet")
		}
		return nil
	})
	s.AddReadiness("router", func() error { return nil })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.ServeListener(ctx, l) }()
	base := "http://" + l.Addr().String()

	if code, body := get(t, base+"/livez"); code != 200 || !strings.Contains(body, "[+] felix ok") {
		t.Errorf("/livez = %d %q", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "[-] felix: no snapshot yet") || !strings.Contains(body, "[+] router ok") {
		t.Errorf("/readyz while felix is not ready = %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "bgpfabric_test_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, missing metrics:\n%s", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("ServeListener: %v", err)
	}
}

// TestReady: Ready passes when every readiness check does and names each
// one that fails; liveness checks do not count.
func TestReady(t *testing.T) {
	s := New()
	if err := s.Ready(); err != nil {
		t.Errorf("no checks: %v", err)
	}
	var felixReady atomic.Bool
	s.AddReadiness("felix", func() error {
		if !felixReady.Load() {
			return errors.New("not in sync")
		}
		return nil
	})
	s.AddReadiness("router", func() error { return nil })
	s.AddLiveness("dead", func() error { return errors.New("dead") })
	if err := s.Ready(); err == nil || err.Error() != "felix: not in sync" {
		t.Errorf("felix not ready: %v, want %q", err, "felix: not in sync")
	}
	felixReady.Store(true)
	if err := s.Ready(); err != nil {
		t.Errorf("all ready: %v", err)
	}
}
