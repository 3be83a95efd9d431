package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/sim"
)

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		ok     bool
	}{
		{"127.0.0.1:8080", false, true},
		{"127.9.9.9:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"[::]:8080", false, false},
		{"192.0.2.1:8080", false, false},
		{"example.com:8080", false, false},
		{"0.0.0.0:8080", true, true},
		{":8080", true, true},
		{"127.0.0.1", false, false}, // no port
	} {
		err := CheckAddr(tc.addr, tc.remote)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q, remote %v) = %v, want ok %v", tc.addr, tc.remote, err, tc.ok)
		}
	}
	if _, err := Listen(NewLive(nil), ServerOptions{Addr: "0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "--ui-allow-remote") {
		t.Errorf("Listen on 0.0.0.0 without AllowRemote: %v", err)
	}
}

// sseReader reads server-sent events.
type sseReader struct{ r *bufio.Reader }

func (s sseReader) next(t *testing.T) (string, Event) {
	t.Helper()
	var typ string
	var data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && data != "":
			var e Event
			if err := json.Unmarshal([]byte(data), &e); err != nil {
				t.Fatalf("event %q: %v", data, err)
			}
			return typ, e
		case strings.HasPrefix(line, "event: "):
			typ = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func TestServerEventsAndPages(t *testing.T) {
	live := NewLive(nil)
	defer live.Close()
	srv, err := Listen(live, ServerOptions{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	get := func(path string) (*http.Response, string) {
		t.Helper()
		r, err := http.Get(srv.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, string(b)
	}
	r, body := get("")
	// Everything comes from this server: no CDN, works offline.
	if r.StatusCode != 200 || !strings.Contains(body, `<svg`) || !strings.Contains(body, `src="static/app.js"`) ||
		strings.Contains(body, `src="http`) || strings.Contains(body, `href="http`) || strings.Contains(body, `//cdn`) {
		t.Fatalf("index: %d\n%s", r.StatusCode, body)
	}
	for _, a := range []string{"static/app.js", "static/style.css", "graph.svg", "api/snapshot"} {
		if r, _ := get(a); r.StatusCode != 200 {
			t.Errorf("%s: %s", a, r.Status)
		}
	}
	if r, _ := get("api/node?name=nope"); r.StatusCode != 404 {
		t.Errorf("unknown node: %s", r.Status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL()+"events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sse := sseReader{bufio.NewReader(resp.Body)}
	typ, e := sse.next(t)
	if typ != "snapshot" || e.Snapshot == nil || e.Snapshot.Phase != "boot" {
		t.Fatalf("first event: %s %+v", typ, e)
	}
	live.Checks([]sim.CheckResult{{Name: "c", Kind: "routes", Status: sim.Failed}})
	seen := map[string]bool{}
	for !(seen["check"] && seen["timeline"]) {
		typ, e := sse.next(t)
		seen[typ] = true
		if typ == "check" && (e.Check.Name != "c" || e.Index != 0) {
			t.Fatalf("check event: %+v", e)
		}
	}
	// Close ends the open stream.
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil && ctx.Err() != nil {
		t.Fatalf("the stream outlived the server: %v", err)
	}
}
