package bfd_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/bfd"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// The interop tests run our Server in one namespace and FRR's bfdd or
// BIRD 2 in another, joined by a veth pair (bfa–bfb):
//
//	us:   bfa 10.88.0.1/24 fd88::1/64 fe80::1/64, lo 10.88.1.1/32, 10.88.1.2/32 via 10.88.0.2
//	peer: bfb 10.88.0.2/24 fd88::2/64 fe80::2/64, lo 10.88.1.2/32, 10.88.1.1/32 via 10.88.0.1
//
// Single-hop sessions run between the veth addresses (IPv4, IPv6 global
// and link-local), multihop between the loopback addresses (RFC 5883's
// usual case).
var (
	usV4    = netip.MustParseAddr("10.88.0.1")
	peerV4  = netip.MustParseAddr("10.88.0.2")
	usV6    = netip.MustParseAddr("fd88::1")
	peerV6  = netip.MustParseAddr("fd88::2")
	usLL    = netip.MustParseAddr("fe80::1")
	peerLL  = netip.MustParseAddr("fe80::2")
	usLoop  = netip.MustParseAddr("10.88.1.1")
	peerLoo = netip.MustParseAddr("10.88.1.2")
)

// Timers of every interop session: 300 ms × 5 = 1.5 s detection, so that a
// loaded test machine does not flap them.
const (
	interopInterval = 300 * time.Millisecond
	interopMult     = 5
)

type interop struct {
	t        *testing.T
	us, peer *nstest.NS
	dir      string
	srv      *bfd.Server
	changes  chan bfd.StateChange
}

func newInterop(t *testing.T) *interop {
	t.Helper()
	x := &interop{t: t, us: nstest.New(t), peer: nstest.New(t), changes: make(chan bfd.StateChange, 1000)}
	nstest.Veth(t, x.us, "bfa", x.peer, "bfb")
	x.addr(x.us, "bfa", "10.88.0.1/24", "fd88::1/64", "fe80::1/64")
	x.addr(x.us, "lo", "10.88.1.1/32")
	x.addr(x.peer, "bfb", "10.88.0.2/24", "fd88::2/64", "fe80::2/64")
	x.addr(x.peer, "lo", "10.88.1.2/32")
	x.route(x.us, "10.88.1.2/32", "10.88.0.2")
	x.route(x.peer, "10.88.1.1/32", "10.88.0.1")

	// A directory the FRR user can reach (t.TempDir's parents are 0700).
	dir, err := os.MkdirTemp("", "bfd-interop-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	x.dir = dir

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := x.us.Do(func() error {
		var err error
		x.srv, err = bfd.NewServer(bfd.ServerConfig{Logger: logger})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.srv.Close() })
	cancel := x.srv.Subscribe(func(c bfd.StateChange) { x.changes <- c })
	t.Cleanup(cancel)
	return x
}

func (x *interop) addr(ns *nstest.NS, ifname string, cidrs ...string) {
	x.t.Helper()
	link, err := ns.Netlink.LinkByName(ifname)
	if err != nil {
		x.t.Fatal(err)
	}
	for _, c := range cidrs {
		a, err := netlink.ParseAddr(c)
		if err != nil {
			x.t.Fatal(err)
		}
		a.Flags = syscall.IFA_F_NODAD
		if err := ns.Netlink.AddrAdd(link, a); err != nil {
			x.t.Fatalf("adding %s to %s in %s: %v", c, ifname, ns.Name, err)
		}
	}
}

func (x *interop) route(ns *nstest.NS, dst, gw string) {
	x.t.Helper()
	_, n, _ := net.ParseCIDR(dst)
	if err := ns.Netlink.RouteAdd(&netlink.Route{Dst: n, Gw: net.ParseIP(gw)}); err != nil {
		x.t.Fatalf("route %s via %s in %s: %v", dst, gw, ns.Name, err)
	}
}

// add starts one of our sessions (in our namespace, where the interface
// name resolves).
func (x *interop) add(cfg bfd.Config) bfd.Key {
	x.t.Helper()
	cfg.MinTx, cfg.MinRx, cfg.Multiplier = interopInterval, interopInterval, interopMult
	var k bfd.Key
	if err := x.us.Do(func() error {
		var err error
		k, err = x.srv.AddSession(cfg)
		return err
	}); err != nil {
		x.t.Fatal(err)
	}
	return k
}

// waitState waits for a change of one of keys into st (after since) and
// returns it; every key must get there.
func (x *interop) waitState(st bfd.State, since time.Time, keys ...bfd.Key) map[bfd.Key]bfd.StateChange {
	x.t.Helper()
	got := map[bfd.Key]bfd.StateChange{}
	want := map[bfd.Key]bool{}
	for _, k := range keys {
		want[k] = true
	}
	timeout := time.After(60 * time.Second)
	for len(got) < len(want) {
		select {
		case c := <-x.changes:
			if want[c.Key] && c.New == st && !c.At.Before(since) {
				got[c.Key] = c
			}
		case <-timeout:
			x.t.Fatalf("sessions not %v within 60 s: got %v of %v; status %+v", st, len(got), keys, x.srv.Sessions())
		}
	}
	return got
}

// cutTable is the nftables table that cuts BFD in the peer's namespace:
// both directions, both ports. Taking the veth down instead would also
// flush its IPv6 addresses and the routes through it.
const cutTable = `table inet bfdcut {
	chain in { type filter hook input priority 0; udp dport { 3784, 4784 } drop; }
	chain out { type filter hook output priority 0; udp dport { 3784, 4784 } drop; }
}
`

// setCut adds or deletes cutTable in the peer's namespace and returns when
// it did.
func (x *interop) setCut(cut bool) time.Time {
	x.t.Helper()
	var cmd *exec.Cmd
	if cut {
		cmd = exec.Command("nft", "-f", "-")
		cmd.Stdin = strings.NewReader(cutTable)
	} else {
		cmd = exec.Command("nft", "delete", "table", "inet", "bfdcut")
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	at := time.Now() // packets may pass before nft returns
	if err := x.peer.Do(cmd.Run); err != nil {
		x.t.Fatalf("nft (cut=%v) in %s: %v: %s", cut, x.peer.Name, err, out.String())
	}
	return at
}

// failAndRecover cuts the path, checks that every session goes Down by
// detection (diag 1) and that the peer's sessions go down too, then
// restores it and waits for everything to come back Up.
func (x *interop) failAndRecover(peerState func() map[string]string, keys ...bfd.Key) {
	x.t.Helper()
	detect := map[bfd.Key]time.Duration{}
	for _, k := range keys {
		detect[k] = x.status(k).DetectTime
	}
	cut := x.setCut(true)
	downs := x.waitState(bfd.StateDown, cut, keys...)
	for k, c := range downs {
		if c.Diag != bfd.DiagControlDetectExpired {
			x.t.Fatalf("%s went Down with %v, want Control Detection Time Expired", k, c.Diag)
		}
		st, _ := x.srv.Session(k)
		x.t.Logf("%s: Down %v after the last packet received, %v after the cut began (detection time %v)", k,
			c.At.Sub(st.LastReceived).Round(time.Millisecond), c.At.Sub(cut).Round(time.Millisecond), detect[k])
	}
	x.waitPeer(peerState, "down")
	back := x.setCut(false)
	x.waitState(bfd.StateUp, back, keys...)
	x.waitPeer(peerState, "up")
}

// waitPeer waits until every session the peer reports is in state.
func (x *interop) waitPeer(peerState func() map[string]string, state string) {
	x.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := peerState()
		ok := len(m) > 0
		for _, s := range m {
			ok = ok && s == state
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("peer sessions not all %s within 60 s: %v", state, m)
		}
		time.Sleep(200 * time.Millisecond) // polling an external CLI: no event to wait on
	}
}

// start runs a daemon in the peer's namespace, with its output in
// dir/name.log (shown when the test fails), and kills its process group
// when the test ends.
func (x *interop) start(name string, argv ...string) {
	x.t.Helper()
	logPath := filepath.Join(x.dir, name+".log")
	out, err := os.Create(logPath)
	if err != nil {
		x.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := x.peer.Do(cmd.Start); err != nil {
		x.t.Fatalf("starting %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	x.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if x.t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			x.t.Logf("last lines of %s:\n%s", name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
	})
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInteropFRR: our Server against FRR's bfdd (with zebra, which bfdd
// asks for interfaces): single hop over IPv4 and IPv6, and multihop over
// IPv4. All come Up on both sides; a cut link is detected on both sides
// (ours with diag 1), and all come back when it returns. The cut is an
// nftables drop in FRR's namespace.
func TestInteropFRR(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireCommand(t, "nft")
	nstest.RequireCommand(t, "/usr/lib/frr/bfdd")
	nstest.RequireCommand(t, "/usr/lib/frr/zebra")
	nstest.RequireCommand(t, "vtysh")
	x := newInterop(t)
	frr, err := user.Lookup("frr")
	if err != nil {
		t.Fatalf("user frr (is the frr package installed?): %v", err)
	}
	uid, _ := strconv.Atoi(frr.Uid)
	gid, _ := strconv.Atoi(frr.Gid)
	if err := os.Chown(x.dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	ms := interopInterval.Milliseconds()
	conf := filepath.Join(x.dir, "frr.conf")
	timers := fmt.Sprintf("  receive-interval %d\n  transmit-interval %d\n  detect-multiplier %d\n", ms, ms, interopMult)
	writeFile(t, conf, "bfd\n"+
		" peer 10.88.0.1 local-address 10.88.0.2 interface bfb\n"+timers+" !\n"+
		" peer fd88::1 local-address fd88::2 interface bfb\n"+timers+" !\n"+
		" peer fe80::1 local-address fe80::2 interface bfb\n"+timers+" !\n"+
		" peer 10.88.1.1 multihop local-address 10.88.1.2\n"+timers+" !\n!\n")
	zserv := filepath.Join(x.dir, "zserv.api")
	common := fmt.Sprintf("-z %s --vty_socket %s", zserv, x.dir)
	x.start("frr", "/bin/sh", "-c", fmt.Sprintf(
		"/usr/lib/frr/zebra %s -f %s -i %s/zebra.pid & "+
			"i=0; while [ ! -S %s ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; "+
			"exec /usr/lib/frr/bfdd %s --bfdctl %s/bfdd.sock -f %s -i %s/bfdd.pid",
		common, conf, x.dir, zserv, common, x.dir, conf, x.dir))

	start := time.Now()
	keys := []bfd.Key{
		x.add(bfd.Config{Peer: peerV4, Local: usV4, Interface: "bfa"}),
		x.add(bfd.Config{Peer: peerV6, Local: usV6, Interface: "bfa"}),
		x.add(bfd.Config{Peer: peerLL, Local: usLL, Interface: "bfa"}),
		x.add(bfd.Config{Peer: peerLoo, Local: usLoop, Multihop: true}),
	}
	peerState := func() map[string]string {
		b, err := exec.Command("vtysh", "--vty_socket", x.dir, "-c", "show bfd peers json").Output()
		if err != nil {
			return nil
		}
		var peers []struct {
			Peer     string `json:"peer"`
			Multihop bool   `json:"multihop"`
			Status   string `json:"status"`
			RemoteID uint32 `json:"remote-id"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(b), &peers); err != nil {
			return nil
		}
		m := map[string]string{}
		for _, p := range peers {
			m[fmt.Sprintf("%s multihop=%v", p.Peer, p.Multihop)] = p.Status
		}
		return m
	}
	x.waitState(bfd.StateUp, start, keys...)
	x.waitPeer(peerState, "up")
	if m := peerState(); len(m) != 4 {
		t.Fatalf("FRR reports %v, want 4 sessions", m)
	}
	// Both sides agree on the intervals after the poll sequences.
	x.waitAgreed(keys...)

	// FRR slows the IPv4 single-hop session to 600 ms: it polls, we
	// answer with a Final, and we then send at its new required receive
	// interval and detect with its new transmit interval.
	finals0 := x.status(keys[0]).Counters.Finals
	b, err := exec.Command("vtysh", "--vty_socket", x.dir, "-c", "configure terminal", "-c", "bfd",
		"-c", "peer 10.88.0.1 local-address 10.88.0.2 interface bfb",
		"-c", "receive-interval 600", "-c", "transmit-interval 600").CombinedOutput()
	if err != nil {
		t.Fatalf("vtysh: %v: %s", err, b)
	}
	// The new intervals apply when the Poll arrives; the Final that
	// answers it is counted when it is sent, a moment later: wait for
	// both (a poll never answered times out here).
	st := x.waitStatus(keys[0], "FRR's new intervals in force and its poll answered with a Final", func(st bfd.Status) bool {
		return st.TxInterval == 600*time.Millisecond && st.DetectTime == interopMult*600*time.Millisecond &&
			st.Counters.Finals > finals0
	})
	// FRR stops polling once it has our Final: after three packets (one
	// may have left FRR before our Final came), over eight more we answer
	// no more polls.
	st = x.waitStatus(keys[0], "three more packets", func(s bfd.Status) bool { return s.Counters.RxPackets >= st.Counters.RxPackets+3 })
	st2 := x.waitStatus(keys[0], "eight more packets", func(s bfd.Status) bool { return s.Counters.RxPackets >= st.Counters.RxPackets+8 })
	if st2.Counters.Finals != st.Counters.Finals {
		t.Fatalf("FRR keeps polling: Finals %d → %d", st.Counters.Finals, st2.Counters.Finals)
	}

	x.failAndRecover(peerState, keys...)
}

// waitAgreed waits until every session runs at the configured interval
// with the configured detection time, and the peer has answered a poll
// sequence.
func (x *interop) waitAgreed(keys ...bfd.Key) {
	x.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok := true
		for _, k := range keys {
			st, _ := x.srv.Session(k)
			// Polls ≥ 1: the peer answered our Poll (sent on going Up, to
			// leave the 1 s slow rate) with a Final.
			ok = ok && st.State == bfd.StateUp && st.TxInterval == interopInterval &&
				st.DetectTime == time.Duration(interopMult)*interopInterval && st.Counters.Polls >= 1
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("intervals not agreed within 30 s: %+v", x.srv.Sessions())
		}
		time.Sleep(50 * time.Millisecond) // polling a snapshot: no event for a finished poll
	}
}

// TestInteropBIRD: our Server against BIRD 2's protocol bfd, with
// neighbor entries: single hop over IPv4 and IPv6, multihop over IPv4.
func TestInteropBIRD(t *testing.T) {
	nstest.RequireRoot(t)
	nstest.RequireCommand(t, "nft")
	nstest.RequireCommand(t, "bird")
	nstest.RequireCommand(t, "birdc")
	x := newInterop(t)
	ms := interopInterval.Milliseconds()
	timers := fmt.Sprintf("min rx interval %d ms; min tx interval %d ms; idle tx interval 1000 ms; multiplier %d;", ms, ms, interopMult)
	conf := filepath.Join(x.dir, "bird.conf")
	sock := filepath.Join(x.dir, "bird.ctl")
	writeFile(t, conf, fmt.Sprintf(`router id 10.88.0.2;
protocol device {}
protocol bfd {
  interface "bfb" { %s };
  multihop { %s };
  neighbor 10.88.0.1 dev "bfb" local 10.88.0.2;
  neighbor fd88::1 dev "bfb" local fd88::2;
  neighbor fe80::1 dev "bfb" local fe80::2;
  neighbor 10.88.1.1 local 10.88.1.2 multihop yes;
}
`, timers, timers))
	x.start("bird", "bird", "-f", "-c", conf, "-s", sock, "-P", filepath.Join(x.dir, "bird.pid"))

	start := time.Now()
	keys := []bfd.Key{
		x.add(bfd.Config{Peer: peerV4, Local: usV4, Interface: "bfa"}),
		x.add(bfd.Config{Peer: peerV6, Local: usV6, Interface: "bfa"}),
		x.add(bfd.Config{Peer: peerLL, Local: usLL, Interface: "bfa"}),
		// BIRD sends multihop packets with the system's default TTL (64),
		// below our default minimum of 254.
		x.add(bfd.Config{Peer: peerLoo, Local: usLoop, Multihop: true, MinTTL: 60}),
	}
	peerState := func() map[string]string {
		b, err := exec.Command("birdc", "-s", sock, "show", "bfd", "sessions").Output()
		if err != nil {
			return nil
		}
		m := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			if _, err := netip.ParseAddr(f[0]); err != nil {
				continue
			}
			// Columns: address, interface (absent for multihop), state.
			for _, s := range f[1:3] {
				switch s {
				case "Up", "Down", "Init", "AdminDown":
					m[f[0]] = strings.ToLower(s)
				}
			}
		}
		return m
	}
	x.waitState(bfd.StateUp, start, keys...)
	x.waitPeer(peerState, "up")
	if m := peerState(); len(m) != 4 {
		t.Fatalf("BIRD reports %v, want 4 sessions", m)
	}
	x.waitAgreed(keys...)
	x.failAndRecover(peerState, keys...)
}

func (x *interop) status(k bfd.Key) bfd.Status {
	st, _ := x.srv.Session(k)
	return st
}

// waitStatus waits until k's status satisfies cond and returns it.
func (x *interop) waitStatus(k bfd.Key, what string, cond func(bfd.Status) bool) bfd.Status {
	x.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := x.status(k)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("%s: %s not within 30 s: %+v", k, what, st)
		}
		time.Sleep(50 * time.Millisecond) // polling a snapshot: no event for this
	}
}
