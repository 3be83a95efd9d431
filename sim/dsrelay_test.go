package sim

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDSRelayCut relays a node's connections to an echo server standing
// in for etcd: they pass; cut, the open one is closed and a new one is
// accepted but never answered; healed, the held one is closed and a new
// one passes again.
func TestDSRelayCut(t *testing.T) {
	dir, err := os.MkdirTemp("", "bfrelay")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	up, err := net.Listen("unix", filepath.Join(dir, "up.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := newDSRelay("unix://"+up.Addr().String(), filepath.Join(dir, "dsr"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ep, err := r.endpoint(ctx, "n-1")
	if err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		c, err := net.Dial("unix", ep[len("unix://"):])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// echo reports whether a message comes back within d.
	echo := func(c net.Conn, d time.Duration) bool {
		c.SetDeadline(time.Now().Add(d))
		if _, err := c.Write([]byte("ping")); err != nil {
			return false
		}
		buf := make([]byte, 4)
		_, err := io.ReadFull(c, buf)
		return err == nil && string(buf) == "ping"
	}
	c1 := dial()
	defer c1.Close()
	if !echo(c1, 5*time.Second) {
		t.Fatal("no echo through the relay")
	}
	if err := r.setCut("n-1", true); err != nil {
		t.Fatal(err)
	}
	if echo(c1, 2*time.Second) {
		t.Error("the open connection still passes after the cut")
	}
	c2 := dial() // accepted, never answered
	defer c2.Close()
	if echo(c2, 300*time.Millisecond) {
		t.Error("a new connection passes during the cut")
	}
	if err := r.setCut("n-1", false); err != nil {
		t.Fatal(err)
	}
	c2.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Error("the held connection was not closed when the cut healed")
	}
	c3 := dial()
	defer c3.Close()
	if !echo(c3, 5*time.Second) {
		t.Error("no echo through the relay after the cut healed")
	}
	if err := r.setCut("n-9", true); err == nil {
		t.Error("cutting a node without a relay succeeded")
	}
}
