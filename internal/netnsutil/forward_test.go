package netnsutil_test

import (
	"io"
	"net"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// TestForward: a connection to 127.0.0.1:port inside a namespace reaches
// a listener on the test's own loopback at the same address, both ways;
// Close ends the listener and the relayed connection.
func TestForward(t *testing.T) {
	ns := nstest.New(t)
	up, err := net.Listen("tcp", "127.0.0.1:0")
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
			go func() { io.Copy(c, c); c.Close() }() // echo
		}
	}()
	addr := up.Addr().String()
	fw, err := netnsutil.Forward(ns.Handle, addr, addr)
	if err != nil {
		t.Fatal(err)
	}
	var c net.Conn
	if err := ns.Do(func() (err error) { c, err = net.Dial("tcp", addr); return err }); err != nil {
		t.Fatalf("dialling %s inside the namespace: %v", addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo through the forwarder: %q, %v", buf, err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(buf); err == nil {
		t.Error("the relayed connection is open after Close")
	}
	if err := ns.Do(func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}); err == nil {
		t.Error("the forwarder still accepts after Close")
	}
}
