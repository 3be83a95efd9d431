package datastore_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// TestEmbeddedSocketPrivate: the socket is 0600 in a 0700 directory
// whatever the umask. Not parallel: it sets the process's umask to 000,
// and parallel tests start only after the sequential ones have ended.
func TestEmbeddedSocketPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	ctx := testContext(t)
	base, err := os.MkdirTemp("", "bf")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(base)

	for _, tc := range []struct{ name, data, listen, sockDir string }{
		{"own directory", filepath.Join(base, "d1"), "unix://" + filepath.Join(base, "run", "etcd.sock"), filepath.Join(base, "run")},
		{"default, in the data dir", filepath.Join(base, "d2"), "", filepath.Join(base, "d2")},
	} {
		e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: tc.data, Listen: tc.listen})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		sock := strings.TrimPrefix(e.ClientEndpoint(), "unix://")
		if filepath.Dir(sock) != tc.sockDir {
			t.Errorf("%s: socket %s, want it in %s", tc.name, sock, tc.sockDir)
		}
		fi, err := os.Stat(sock)
		if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: socket %s: %v %v, want a socket with mode 0600 under umask 000", tc.name, sock, fi.Mode(), err)
		}
		di, err := os.Stat(tc.sockDir)
		if err != nil || di.Mode().Perm() != 0o700 {
			t.Errorf("%s: socket directory %s: %v %v, want mode 0700 under umask 000", tc.name, tc.sockDir, di.Mode(), err)
		}
		newClient(t, e.ClientEndpoint())
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEmbeddedSocketDirRefused: a socket directory that others can enter,
// or that another user owns, is refused before etcd starts.
func TestEmbeddedSocketDirRefused(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	try := func(t *testing.T, mode os.FileMode, uid int, want string) {
		t.Helper()
		base, err := os.MkdirTemp("", "bf")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(base) })
		dir := filepath.Join(base, "run")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		if uid >= 0 {
			if err := os.Chown(dir, uid, -1); err != nil {
				t.Fatal(err)
			}
		}
		e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: filepath.Join(base, "data"), Listen: "unix://" + filepath.Join(dir, "etcd.sock")})
		if e != nil {
			e.Close()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("socket directory with mode %v, uid %d: %v, want an error saying %q", mode, uid, err, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "etcd.sock")); err == nil {
			t.Errorf("a socket was created in the refused directory")
		}
	}
	t.Run("group and others may enter", func(t *testing.T) { try(t, 0o755, -1, "chmod 0700") })
	t.Run("world writable", func(t *testing.T) { try(t, 0o777, -1, "chmod 0700") })
	t.Run("sticky and world writable", func(t *testing.T) { try(t, 0o777|os.ModeSticky, -1, "chmod 0700") })
	t.Run("another owner", func(t *testing.T) {
		nstest.RequireRoot(t) // chown
		try(t, 0o700, 65534, "owned by uid 65534")
	})
}
