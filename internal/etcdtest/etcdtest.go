// Package etcdtest starts a real embedded etcd for a test, on a unix socket
// in a short temporary directory, and stops and removes it when the test
// ends.
package etcdtest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/datastore"
)

// Timeout bounds starting etcd and connecting to it: generous, for a busy
// two-core machine.
const Timeout = 30 * time.Second

// Etcd is a running embedded etcd.
type Etcd struct {
	*datastore.Embedded
	// Dir holds the data directory and the socket.
	Dir string
}

// Start starts an embedded etcd that lives until the test ends. The socket
// path stays short (os.MkdirTemp, not t.TempDir): a unix socket path has at
// most 107 bytes.
func Start(t testing.TB) *Etcd {
	t.Helper()
	dir, err := os.MkdirTemp("", "bf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{
		DataDir: filepath.Join(dir, "data"),
		Listen:  "unix://" + filepath.Join(dir, "etcd.sock"),
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("starting embedded etcd: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return &Etcd{Embedded: e, Dir: dir}
}

// Client connects to e; the client is closed when the test ends.
func (e *Etcd) Client(t testing.TB) *datastore.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{e.ClientEndpoint()}, DialTimeout: Timeout})
	if err != nil {
		t.Fatalf("connecting to embedded etcd: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// EnableAuth turns on etcd's authentication through c, as an operator
// does with etcdctl: the user root with password and the root role, then
// auth enable. From then on every client needs root's credentials.
func EnableAuth(t testing.TB, c *datastore.Client, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	cli := c.Etcd()
	if _, err := cli.UserAdd(ctx, "root", password); err != nil {
		t.Fatalf("adding user root: %v", err)
	}
	if _, err := cli.RoleAdd(ctx, "root"); err != nil {
		t.Fatalf("adding role root: %v", err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatalf("granting role root: %v", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatalf("enabling authentication: %v", err)
	}
}
