package datastore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxUnixPath is the longest socket path Linux accepts: sun_path holds 108
// bytes including the terminating NUL.
const maxUnixPath = 107

// listenURL is the client URL of an embedded etcd, parsed and checked.
type listenURL struct {
	url *url.URL
	// socket is the absolute path of a unix socket, or "".
	socket string
}

// parseListen checks an EmbeddedConfig.Listen value. Two forms are
// accepted: unix:///absolute/path.sock (every network namespace of the
// machine reaches it through the filesystem) and http://<ip>:<port> on a
// loopback address (port 0 picks a free one).
func parseListen(s string) (listenURL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return listenURL{}, fmt.Errorf("listen URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "unix":
		// "unix:///abs/path" parses with an empty host; "unix://rel/path"
		// would put "rel" in the host, which etcd and clientv3 read
		// differently, so only absolute paths are allowed.
		if u.Host != "" || !filepath.IsAbs(u.Path) {
			return listenURL{}, fmt.Errorf("listen URL %q: a unix socket needs an absolute path, as in unix:///run/bgpfabric/etcd.sock", s)
		}
		p := filepath.Clean(u.Path)
		if len(p) > maxUnixPath {
			return listenURL{}, fmt.Errorf("listen URL %q: socket path is %d bytes long, longer than the %d that unix sockets allow", s, len(p), maxUnixPath)
		}
		return listenURL{url: &url.URL{Scheme: "unix", Path: p}, socket: p}, nil
	case "http":
		host, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			return listenURL{}, fmt.Errorf("listen URL %q: %w", s, err)
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return listenURL{}, fmt.Errorf("listen URL %q: the embedded etcd listens only on a loopback IP address or a unix socket", s)
		}
		return listenURL{url: &url.URL{Scheme: "http", Host: u.Host}}, nil
	default:
		return listenURL{}, fmt.Errorf("listen URL %q: scheme must be unix or http", s)
	}
}

// prepareSocket makes the socket's directory and makes sure that no live
// server owns the path: etcd removes whatever file is there before it
// listens, and must not steal the socket of another running instance. A
// stale file left by a crash is fine; etcd replaces it.
func prepareSocket(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating directory for socket %s: %w", path, err)
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking socket %s: %w", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("socket path %s exists and is not a socket", path)
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "unix", path)
	if err == nil {
		conn.Close()
		return fmt.Errorf("socket %s is in use by another running server", path)
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
		return nil // stale
	}
	return fmt.Errorf("checking socket %s: %w", path, err)
}
