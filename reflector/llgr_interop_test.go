package reflector

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// llgrGoBGPd is a gobgpd daemon (Debian package gobgpd) whose gRPC API
// listens on a loopback port; gobgp, its CLI, reads it.
type llgrGoBGPd struct{ host, port string }

func startGoBGPd(t *testing.T, conf string) *llgrGoBGPd {
	t.Helper()
	bin := daemonBinary(t, "gobgpd")
	daemonBinary(t, "gobgp")
	dir := t.TempDir()
	f := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	api := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, "127.0.0.1")))
	runDaemon(t, dir, bin, "-f", f, "-t", "toml", "--api-hosts", api, "--pprof-disable", "-l", "debug", "-p")
	h, p, _ := net.SplitHostPort(api)
	return &llgrGoBGPd{host: h, port: p}
}

// cli runs the gobgp CLI against this daemon.
func (g *llgrGoBGPd) cli(args ...string) (string, error) {
	out, err := exec.Command("gobgp", append([]string{"-u", g.host, "-p", g.port}, args...)...).CombinedOutput()
	return string(out), err
}

// goPath is a path of `gobgp global rib -j`.
type goPath struct {
	Attrs []struct {
		Type        int      `json:"type"`
		Communities []uint32 `json:"communities"`
	} `json:"attrs"`
	Stale bool `json:"stale"`
}

func (p goPath) has(c uint32) bool {
	for _, a := range p.Attrs {
		if a.Type == 8 && slices.Contains(a.Communities, c) {
			return true
		}
	}
	return false
}

// rib returns the daemon's table by prefix (nil when it cannot be read).
func (g *llgrGoBGPd) rib() map[string][]goPath {
	out, err := g.cli("global", "rib", "-j")
	if err != nil {
		return nil
	}
	var m map[string][]goPath
	if json.Unmarshal([]byte(out), &m) != nil {
		return nil
	}
	return m
}

// frrCommunities returns the communities of FRR's paths to p ("llgr-stale"),
// and whether it has any path.
func (f *frr) communities(p string) (string, bool) {
	var r struct {
		Paths []struct {
			Community struct {
				String string `json:"string"`
			} `json:"community"`
		} `json:"paths"`
	}
	if json.Unmarshal([]byte(f.show("show bgp ipv4 unicast "+p+" json")), &r) != nil || len(r.Paths) == 0 {
		return "", false
	}
	return r.Paths[0].Community.String, true
}

// killFRR kills an FRR bgpd with SIGKILL (no NOTIFICATION, no clean-up).
func killFRR(t *testing.T, f *frr) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, "bgpd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("bgpd.pid: %q", b)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

const frrLLGRClient = `frr defaults traditional
hostname a
log stdout debugging
!
route-map NH permit 10
 set ip next-hop 198.18.0.2
!
router bgp %[1]d
 bgp router-id 10.0.40.2
 no bgp network import-check
 bgp graceful-restart
 bgp graceful-restart restart-time 5
 bgp graceful-restart preserve-fw-state
 bgp long-lived-graceful-restart stale-time 60
 neighbor %[2]s remote-as %[1]d
 neighbor %[2]s port %[3]d
 neighbor %[2]s update-source %[4]s
 neighbor %[2]s timers connect 1
 address-family ipv4 unicast
%[5]s  neighbor %[2]s route-map NH out
 exit-address-family
!
`

// TestInteropLLGR: long-lived graceful restart with FRR bgpd and gobgpd
// as clients, both with LLGR configured.
//
// As helper: FRR (restart time 5 s, LLST 60 s) is killed; past its restart
// time gobgpd still has its routes, now with LLGR_STALE (65535:6). FRR
// comes back announcing one of its two routes and End-of-RIB: the other
// is withdrawn at gobgpd, the first is fresh again.
//
// As restarting speaker: the reflector (restart time 3 s, LLST 60 s)
// stops without NOTIFICATIONs; past its restart time gobgpd and FRR keep
// the routes it reflected to them, as LLGR-stale.
func TestInteropLLGR(t *testing.T) {
	daemonBinary(t, "/usr/lib/frr/bgpd")
	daemonBinary(t, "gobgpd")
	const aAddr, bAddr = "127.0.40.2", "127.0.40.3"
	cfg := grConfig(aAddr, bAddr)
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	for i := range cfg.Neighbors {
		cfg.Neighbors[i].RestartTime = 3 * time.Second
		cfg.Neighbors[i].LongLivedStaleTime = time.Minute
	}
	_, rr, stop := runReflectorCause(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	nets := func(ps ...string) string {
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "  network %s\n", p)
		}
		return b.String()
	}
	a := startFRR(t, aAddr, fmt.Sprintf(frrLLGRClient, testASN, rr.Addr(), rr.Port(), aAddr, nets("10.70.0.0/24", "10.70.1.0/24")))
	b := startGoBGPd(t, fmt.Sprintf(`[global.config]
  as = %d
  router-id = "10.0.40.3"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "%s"
    peer-as = %d
  [neighbors.transport.config]
    local-address = "%s"
    remote-port = %d
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 90
    keepalive-interval = 30
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 5
    long-lived-enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
    [neighbors.afi-safis.long-lived-graceful-restart.config]
      enabled = true
      restart-time = 60
`, testASN, rr.Addr(), testASN, bAddr, rr.Port()))

	waitFor(t, ctx, "gobgpd to take the API", func() bool { _, err := b.cli("global"); return err == nil })
	if out, err := b.cli("global", "rib", "add", "10.71.0.0/24", "nexthop", "198.18.0.3"); err != nil {
		t.Fatalf("gobgp global rib add: %v\n%s", err, out)
	}
	fresh := func(m map[string][]goPath, p string) bool {
		ps := m[p]
		return len(ps) == 1 && !ps[0].has(llgrStaleCommunity)
	}
	llgrStale := func(m map[string][]goPath, p string) bool {
		ps := m[p]
		return len(ps) == 1 && ps[0].has(llgrStaleCommunity)
	}
	waitFor(t, ctx, "gobgpd to learn FRR's routes and FRR gobgpd's", func() bool {
		m := b.rib()
		_, ok := a.communities("10.71.0.0/24")
		return fresh(m, "10.70.0.0/24") && fresh(m, "10.70.1.0/24") && ok
	})

	// The reflector as helper.
	killFRR(t, a)
	down := time.Now()
	waitFor(t, ctx, "gobgpd to have FRR's routes as LLGR-stale", func() bool {
		m := b.rib()
		return llgrStale(m, "10.70.0.0/24") && llgrStale(m, "10.70.1.0/24")
	})
	if el := time.Since(down); el < 4*time.Second {
		t.Errorf("FRR's routes LLGR-stale after %v, before its 5 s restart time", el)
	}
	a2 := startFRR(t, aAddr, fmt.Sprintf(frrLLGRClient, testASN, rr.Addr(), rr.Port(), aAddr, nets("10.70.0.0/24")))
	waitFor(t, ctx, "FRR's End-of-RIB to remove the route it did not announce again", func() bool {
		m := b.rib()
		_, gone := m["10.70.1.0/24"]
		return m != nil && !gone && fresh(m, "10.70.0.0/24")
	})
	waitFor(t, ctx, "FRR to learn gobgpd's route again", func() bool {
		_, ok := a2.communities("10.71.0.0/24")
		return ok
	})

	// The reflector as restarting speaker: it goes away for longer than
	// its restart time.
	stop(ErrGracefulRestart)
	gone := time.Now()
	waitFor(t, ctx, "gobgpd and FRR to keep the reflector's routes as LLGR-stale", func() bool {
		c, ok := a2.communities("10.71.0.0/24")
		return llgrStale(b.rib(), "10.70.0.0/24") && ok && strings.Contains(c, "llgr-stale")
	})
	if el := time.Since(gone); el < 2*time.Second {
		t.Errorf("the reflector's routes LLGR-stale after %v, before its 3 s restart time", el)
	}
}
