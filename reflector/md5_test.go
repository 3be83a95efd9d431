package reflector

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// requireListenerMD5 tries set, a TCP MD5 key, on a listener as the
// reflector makes them; it skips when the kernel refuses (and fails
// instead under CI=true).
func requireListenerMD5(t *testing.T, set func(*net.TCPListener) error) {
	t.Helper()
	var lc net.ListenConfig
	lc.SetMultipathTCP(false) // as the reflector listens
	probe, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	err = set(probe.(*net.TCPListener))
	probe.Close()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("TCP MD5 unavailable: %v", err)
		}
		t.Skipf("TCP MD5 unavailable: %v", err)
	}
}

// TestMD5 needs no root: TCP_MD5SIG works unprivileged on loopback. It
// skips when the kernel refuses the option (and fails instead under CI=true).
func TestMD5(t *testing.T) {
	requireListenerMD5(t, func(l *net.TCPListener) error {
		return setListenerMD5(l, netip.MustParseAddr("127.0.0.2"), "probe")
	})
	cfg := testConfig()
	cfg.Neighbors = []NeighborConfig{{Address: netip.MustParseAddr("127.0.0.2"), ASN: testASN, Client: true, Passive: true, Password: "s3cret"}}
	_, addr := startReflector(t, cfg)
	dial := func(key string) error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 700 * time.Millisecond}
		if key != "" {
			d.Control = md5Control(addr.Addr(), key)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = handshake(c, opts("10.0.0.2"))
		return err
	}
	if err := dial("s3cret"); err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("TCP MD5 unavailable here: %v", err)
		}
		t.Fatalf("right key: %v", err)
	}
	if err := dial("wrong"); err == nil {
		t.Error("a wrong key established a session")
	}
	if err := dial(""); err == nil {
		t.Error("no key established a session")
	}
}
