// Package observe serves a process's health and metrics over HTTP:
// /livez (is the process working at all), /readyz (is every component ready
// to do its job) and /metrics (Prometheus). The components of one process
// (felix and the BGP router in `bgpfabric node`) share one Server, so an
// operator scrapes and probes one port.
package observe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports a component's health: nil when healthy, else why not.
type Check func() error

// Server holds the process's metrics registry and health checks.
type Server struct {
	reg *prometheus.Registry

	mu        sync.Mutex
	liveness  map[string]Check
	readiness map[string]Check
}

// New returns a Server whose registry already has the Go runtime and
// process collectors.
func New() *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &Server{reg: reg, liveness: map[string]Check{}, readiness: map[string]Check{}}
}

// Registry is where components register their metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// AddLiveness adds a check to /livez under name.
func (s *Server) AddLiveness(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.liveness[name] = c
}

// AddReadiness adds a check to /readyz under name.
func (s *Server) AddReadiness(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readiness[name] = c
}

// Handler serves /livez, /readyz and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { s.serveChecks(w, &s.liveness) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { s.serveChecks(w, &s.readiness) })
	return mux
}

// serveChecks runs every check of the set and answers 200 with "ok" lines
// when all pass, else 503 naming each failing check and its reason.
func (s *Server) serveChecks(w http.ResponseWriter, set *map[string]Check) {
	s.mu.Lock()
	names := make([]string, 0, len(*set))
	checks := make(map[string]Check, len(*set))
	for n, c := range *set {
		names = append(names, n)
		checks[n] = c
	}
	s.mu.Unlock()
	sort.Strings(names)
	var b strings.Builder
	failed := false
	for _, n := range names {
		if err := checks[n](); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-] %s: %v\n", n, err)
		} else {
			fmt.Fprintf(&b, "[+] %s ok\n", n)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprint(w, b.String())
}

// Serve listens on addr and serves Handler until ctx ends. It returns once
// the listener is closed; an error to listen is returned at once.
func (s *Server) Serve(ctx context.Context, addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serving health and metrics: %w", err)
	}
	return s.ServeListener(ctx, l)
}

// ServeListener is Serve on an open listener.
func (s *Server) ServeListener(ctx context.Context, l net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	err := srv.Serve(l)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Ready runs every readiness check: nil when all pass, else the
// failures joined.
func (s *Server) Ready() error {
	s.mu.Lock()
	checks := make(map[string]Check, len(s.readiness))
	for n, c := range s.readiness {
		checks[n] = c
	}
	s.mu.Unlock()
	var errs []error
	for n, c := range checks {
		if err := c(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}
