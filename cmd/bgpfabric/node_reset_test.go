package main

import (
	"bytes"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestNodeResetSession: `node reset-session` posts the reset for the peer
// to the node's control socket and reports it; a peer the router has no
// session with (404) fails with its error.
func TestNodeResetSession(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, "router.n1.sock"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.URL.Query().Get("peer"))
		mu.Unlock()
		if r.URL.Query().Get("peer") != "10.0.0.2" {
			http.Error(w, "no BGP session with that peer", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	var out, errb bytes.Buffer
	if code := run([]string{"node", "reset-session", "--control-dir", dir, "--node", "n1", "--peer", "10.0.0.2"}, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "session with 10.0.0.2 reset") {
		t.Errorf("stdout %q", out.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"node", "reset-session", "--control-dir", dir, "--peer", "10.0.0.9"}, strings.NewReader(""), &out, &errb); code == 0 || !strings.Contains(errb.String(), "10.0.0.9: no BGP session with that peer") {
		t.Errorf("unknown peer: exit %d, stderr %q", code, errb.String())
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{"POST /sessions/reset 10.0.0.2", "POST /sessions/reset 10.0.0.9"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("requests %q, want %q", got, want)
	}
}
