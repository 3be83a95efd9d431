package reflector

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// requireListenerMD5 tries set, a TCP MD5 key, on a listener as the
// reflector makes them, and fails the test when the kernel refuses:
// Linux has TCP_MD5SIG, and the reflector's passwords depend on it.
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
		t.Fatalf("TCP MD5 unavailable: %v", err)
	}
}

// TestMD5 needs no root: TCP_MD5SIG works unprivileged on loopback.
func TestMD5(t *testing.T) {
	requireListenerMD5(t, func(l *net.TCPListener) error {
		return setListenerMD5(l, netip.MustParseAddr("127.0.0.2"), "probe")
	})
	cfg := testConfig()
	cfg.Neighbors = []NeighborConfig{{Address: netip.MustParseAddr("127.0.0.2"), ASN: testASN, Client: true, Passive: true, Password: "s3cret"}}
	_, addr := startReflector(t, cfg)
	// A wrong or missing key gets no answer to its SYN: those dials end at
	// the short timeout. The right key gets a generous one, so that a
	// loaded machine does not fail it.
	dial := func(key string, timeout time.Duration) error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: timeout}
		if key != "" {
			d.Control = md5Control(addr.Addr(), key)
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = handshake(c, opts("10.0.0.2"))
		return err
	}
	if err := dial("s3cret", 10*time.Second); err != nil {
		t.Fatalf("right key: %v", err)
	}
	if err := dial("wrong", 700*time.Millisecond); err == nil {
		t.Error("a wrong key established a session")
	}
	if err := dial("", 700*time.Millisecond); err == nil {
		t.Error("no key established a session")
	}
}
