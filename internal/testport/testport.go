// Package testport gives tests TCP ports for servers that must be told a
// port number and can be handed neither an open listener nor port 0:
// GoBGP's listener, BIRD, FRR, a command's --http-addr.
//
// Picking a port by listening on port 0 and closing the listener races:
// that port is in the kernel's ephemeral range, so any socket of any
// process that binds port 0 or connects can take it between the close and
// the server's bind. Pick takes ports below the ephemeral range
// (net.ipv4.ip_local_port_range), which the kernel never hands out by
// itself: only a program that asks for that very number can take one.
// Pick spreads its ports at random over that range, checks that each is
// free on every address the test names, and never hands one out twice in
// a test binary.
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is the lowest port Pick hands out: below it are well-known and
// registered services' ports that a machine may run.
const lowest = 10000

var (
	mu   sync.Mutex
	used = map[int]bool{}
)

// Pick returns a TCP port that is free on every host (an IP address; none
// means 127.0.0.1) and outside the kernel's ephemeral range.
func Pick(tb testing.TB, hosts ...string) int {
	tb.Helper()
	if len(hosts) == 0 {
		hosts = []string{"127.0.0.1"}
	}
	ephemeral, err := ephemeralLow()
	if err != nil {
		tb.Fatalf("testport: %v", err)
	}
	if ephemeral <= lowest+1000 {
		tb.Fatalf("testport: the ephemeral range starts at %d: no room below it above %d", ephemeral, lowest)
	}
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		port := lowest + rand.IntN(ephemeral-lowest)
		if used[port] || !freeOn(port, hosts) {
			continue
		}
		used[port] = true
		return port
	}
	tb.Fatalf("testport: no free port in %d-%d on %v", lowest, ephemeral-1, hosts)
	return 0
}

// freeOn reports whether port can be listened on at every host.
func freeOn(port int, hosts []string) bool {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, h := range hosts {
		l, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		ls = append(ls, l)
	}
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() (int, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, fmt.Errorf("reading the ephemeral port range: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, fmt.Errorf("ip_local_port_range: %q", b)
	}
	return strconv.Atoi(f[0])
}
