package datastore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/datastore"
)

func TestEmbeddedUnixSocket(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dirs := newEtcdDirs(t)
	e := startEtcd(t, dirs)
	if got, want := e.ClientEndpoint(), "unix://"+dirs.sock; got != want {
		t.Errorf("ClientEndpoint = %q, want %q", got, want)
	}
	c := newClient(t, e.ClientEndpoint())
	if _, err := c.Create(ctx, node("n1")); err != nil {
		t.Fatal(err)
	}

	// A second server on another socket runs beside it (its peer port
	// does not conflict), one on the same socket is refused.
	e2 := startEtcd(t, newEtcdDirs(t))
	c2 := newClient(t, e2.ClientEndpoint())
	if _, err := c2.Get(ctx, "Node", "", "n1"); !errors.Is(err, datastore.ErrNotFound) {
		t.Errorf("second server: Get = %v, want ErrNotFound (separate data)", err)
	}
	other := newEtcdDirs(t)
	_, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: other.data, Listen: e.ClientEndpoint()})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("StartEmbedded on a live socket: %v, want an in-use error", err)
	}

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dirs.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Close: %v, want it removed", err)
	}
}

func TestEmbeddedLoopbackTCP(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dirs := newEtcdDirs(t)
	e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: dirs.data, Listen: "http://127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !strings.HasPrefix(e.ClientEndpoint(), "http://127.0.0.1:") || strings.HasSuffix(e.ClientEndpoint(), ":0") {
		t.Fatalf("ClientEndpoint = %q, want the bound loopback port", e.ClientEndpoint())
	}
	c := newClient(t, e.ClientEndpoint())
	if _, err := c.Create(ctx, node("n1")); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedBadListen(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dirs := newEtcdDirs(t)
	long := "unix:///" + strings.Repeat("x", 120) + ".sock"
	for _, listen := range []string{"unix://relative.sock", long, "http://10.1.2.3:2379", "tcp://127.0.0.1:1"} {
		if _, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: dirs.data, Listen: listen}); err == nil {
			t.Errorf("StartEmbedded(Listen %q) succeeded, want an error", listen)
		}
	}
}

func TestNewUnreachable(t *testing.T) {
	t.Parallel()
	dir := newEtcdDirs(t)
	ep := "unix://" + filepath.Join(filepath.Dir(dir.sock), "nobody.sock")
	start := time.Now()
	_, err := datastore.New(context.Background(), datastore.Config{Endpoints: []string{ep}, DialTimeout: time.Second})
	if err == nil {
		t.Fatal("New succeeded without a server")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("New took %v to fail, want about the 1s dial timeout", took)
	}
	if !strings.Contains(err.Error(), ep) {
		t.Errorf("error %q does not name the endpoint %s", err, ep)
	}
	t.Logf("error: %v", err)
}
