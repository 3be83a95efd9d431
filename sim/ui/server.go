package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// CheckAddr refuses a listen address that is not on loopback, unless
// allowRemote: the view shows the fabric's state and logs, and has no
// authentication. A host must be given: ":8080" listens everywhere.
func CheckAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("web view address %q: %w", addr, err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.IsLoopback() {
		return fmt.Errorf("web view address %q is not on loopback (127.0.0.1, [::1] or localhost): the view has no authentication; pass --ui-allow-remote to listen there anyway", addr)
	}
	return nil
}

// Server serves the live view of a Live.
type Server struct {
	live *Live
	log  *slog.Logger
	ln   net.Listener
	srv  *http.Server
	stop context.CancelFunc
	done chan struct{}
	err  error
}

// ServerOptions configure Listen.
type ServerOptions struct {
	// Addr is host:port; the host must be loopback unless AllowRemote.
	Addr        string
	AllowRemote bool
	Logger      *slog.Logger
}

// sseKeepalive is how often an idle event stream gets a comment line,
// so that a page that has gone is noticed.
const sseKeepalive = 15 * time.Second

// sseWriteTimeout bounds one write to a page.
const sseWriteTimeout = 10 * time.Second

// Listen starts serving the view of live on o.Addr until Close.
func Listen(live *Live, o ServerOptions) (*Server, error) {
	if err := CheckAddr(o.Addr, o.AllowRemote); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("web view: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{live: live, log: o.Logger, ln: ln, stop: cancel, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	}()
	return s, nil
}

// URL is where the view is served.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/" }

// Close stops the server: event streams end, then the listener.
func (s *Server) Close() error {
	s.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return errors.Join(err, s.err)
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /graph.svg", s.graph)
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("GET /api/snapshot", s.snapshot)
	mux.HandleFunc("GET /api/node", s.node)
	return mux
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	snap := s.live.Snapshot()
	var b bytes.Buffer
	if err := indexTmpl.Execute(&b, map[string]any{"Snap": snap, "SVG": svgHTML(&snap, svgOptions{})}); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b.Bytes())
}

func (s *Server) graph(w http.ResponseWriter, r *http.Request) {
	snap := s.live.Snapshot()
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	writeSVG(w, &snap, svgOptions{})
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.live.Snapshot())
}

func (s *Server) node(w http.ResponseWriter, r *http.Request) {
	d, err := s.live.Detail(r.Context(), r.URL.Query().Get("name"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	writeJSON(w, d)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// events streams the hub's events to one page: its snapshot first.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	c := s.live.Hub().Subscribe()
	defer c.Close()
	write := func(b []byte) error {
		rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write([]byte("retry: 2000\n\n")); err != nil {
		return
	}
	var buf bytes.Buffer
	snapshots := 0
	for {
		ctx, cancel := context.WithTimeout(r.Context(), sseKeepalive)
		e, err := c.Next(ctx)
		cancel()
		buf.Reset()
		switch {
		case r.Context().Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded):
			buf.WriteString(": keepalive\n\n")
		case err != nil:
			return
		default:
			if e.Type == "snapshot" {
				if snapshots++; snapshots > 1 {
					s.log.Debug("web view: a page fell behind and is sent the whole view again", keyRemote, r.RemoteAddr)
				}
			}
			data, err := json.Marshal(e)
			if err != nil {
				s.log.Warn("web view: encoding an event", keyErr, err)
				continue
			}
			fmt.Fprintf(&buf, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, data)
		}
		if err := write(buf.Bytes()); err != nil {
			return
		}
	}
}
