package testport

import (
	"net"
	"strconv"
	"testing"
)

// TestPick: ports are outside the ephemeral range, distinct, and free on
// every address asked for.
func TestPick(t *testing.T) {
	low, err := ephemeralLow()
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"127.0.0.1", "127.0.0.2", "127.0.1.1"}
	seen := map[int]bool{}
	for range 50 {
		p := Pick(t, hosts...)
		if p < lowest || p >= low {
			t.Fatalf("port %d outside %d-%d", p, lowest, low-1)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		for _, h := range hosts {
			l, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("port %d not free on %s: %v", p, h, err)
			}
			l.Close()
		}
	}
}

// TestFreeOn: a port someone listens on is not free.
func TestFreeOn(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if freeOn(port, []string{"127.0.0.1", "127.0.0.2"}) {
		t.Errorf("port %d reported free while 127.0.0.2 listens on it", port)
	}
}
