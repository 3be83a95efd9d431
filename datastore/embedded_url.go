//go:build !nodeonly

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

// prepareSocket makes sure that the socket's directory is private (see
// privateSocketDir) and that no live server owns the path: etcd removes
// whatever file is there before it listens, and must not steal the socket
// of another running instance. A stale file left by a crash is fine; etcd
// replaces it.
func prepareSocket(ctx context.Context, path string) error {
	if err := privateSocketDir(filepath.Dir(path)); err != nil {
		return err
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

// privateSocketDir creates the socket's directory with mode 0700 if it is
// missing (its parents 0755), and otherwise checks that it is owned by
// this process's user and gives group and others no access at all. The
// directory is the socket's access control: etcd creates the socket with
// the process's umask (srwxrwxrwx under umask 000), and StartEmbedded can
// make it 0600 only after etcd listens; in a directory nobody else may
// enter, nobody can connect in between.
func privateSocketDir(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("creating socket directory %s: %w", dir, err)
		}
		// 0700 whatever the umask: a umask only takes bits away.
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("creating socket directory %s: %w", dir, err)
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("socket directory %s is not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("socket directory %s: no owner information", dir)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("socket directory %s is owned by uid %d, not by this process's uid %d: refusing to put the etcd socket there", dir, st.Uid, uid)
	}
	if m := fi.Mode(); m.Perm()&0o077 != 0 {
		return fmt.Errorf("socket directory %s has mode %s: group and others must have no access, as the directory guards the etcd socket (chmod 0700 %s, or use another directory)", dir, m.Perm(), dir)
	}
	return nil
}

// restrictSocket makes the socket readable and writable by its owner only.
func restrictSocket(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restricting socket %s to mode 0600: %w", path, err)
	}
	return nil
}
