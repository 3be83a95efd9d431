package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	benchAS   = 65000
	routerID  = "10.255.0.1"
	clusterID = "10.255.255.1"
	rrAddr    = "127.0.0.1"
)

// impl is one reflector implementation: how to configure and start it.
type impl interface {
	name() string
	// command returns the daemon's command line; dir is its private
	// directory, where it writes its config.
	command(dir string, port int, c benchCase) ([]string, error)
}

func lookupImpl(name, bgpfabric string, filterRules int) (impl, error) {
	switch name {
	case "bgpfabric":
		p, err := exec.LookPath(bgpfabric)
		if err != nil {
			return nil, err
		}
		abs, _ := filepath.Abs(p)
		return bgpfabricImpl{bin: abs}, nil
	case "bgpfabric-filtered":
		p, err := exec.LookPath(bgpfabric)
		if err != nil {
			return nil, err
		}
		abs, _ := filepath.Abs(p)
		return bgpfabricImpl{bin: abs, filterRules: filterRules}, nil
	case "bird":
		p, err := exec.LookPath("bird")
		if err != nil {
			return nil, errors.New("bird not installed (apt-get install bird2)")
		}
		return birdImpl{p}, nil
	case "frr":
		p := "/usr/lib/frr/bgpd"
		if _, err := os.Stat(p); err != nil {
			return nil, errors.New("FRR bgpd not installed (apt-get install frr)")
		}
		return frrImpl{p}, nil
	case "gobgpd":
		p, err := exec.LookPath("gobgpd")
		if err != nil {
			return nil, errors.New("gobgpd not installed (apt-get install gobgpd)")
		}
		return gobgpdImpl{p}, nil
	}
	return nil, fmt.Errorf("unknown implementation %q", name)
}

// peerAddrs are the injectors' and monitors' addresses; a fleet's clients
// count as injectors.
func peerAddrs(c benchCase) (inj, mon []string) {
	if c.fleet {
		return fleetAddrs(c.n), nil
	}
	for i := range c.n {
		inj = append(inj, fmt.Sprintf("127.0.1.%d", i+1))
	}
	for i := range c.k {
		mon = append(mon, fmt.Sprintf("127.0.2.%d", i+1))
	}
	return inj, mon
}

// bgpfabricImpl is bgpfabric's reflector; with filterRules, every client
// (the one dynamic-neighbour range) has a filter of that many rules in
// each direction (benchFilter).
type bgpfabricImpl struct {
	bin         string
	filterRules int
}

func (b bgpfabricImpl) name() string {
	if b.filterRules > 0 {
		return "bgpfabric-filtered"
	}
	return "bgpfabric"
}

func (b bgpfabricImpl) command(dir string, port int, c benchCase) ([]string, error) {
	cfg := fmt.Sprintf(`routerID: %s
asNumber: %d
clusterID: %s
listen: ["%s:%d"]
dynamicNeighbors:
  - prefix: 127.0.0.0/8
    holdTime: 180s
    gracefulRestart: false
`, routerID, benchAS, clusterID, rrAddr, port)
	if c.evpn {
		cfg += "    families: [l2vpn-evpn]\n"
	}
	if b.filterRules > 0 {
		cfg += "    filters: [bench]\n" + benchFilter(b.filterRules)
	}
	f := filepath.Join(dir, "reflector.yaml")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return []string{b.bin, "reflector", "--config", f, "--http-addr", "", "--log-level", "warn"}, nil
}

type birdImpl struct{ bin string }

func (birdImpl) name() string { return "bird" }
func (b birdImpl) command(dir string, port int, c benchCase) ([]string, error) {
	if c.evpn {
		return nil, errors.New("BIRD 2 does not carry EVPN")
	}
	var s strings.Builder
	// The plain reflector an operator writes: rr client, import all, export
	// all. No kernel protocol, so nothing reaches the kernel's tables. The
	// benchmark's next hops (198.18.0.0/15) do not resolve inside BIRD, so it
	// marks the routes unreachable in its own table, but a reflector passes
	// them on unchanged all the same (RFC 4456; BIRD's BGP export does not
	// filter on reachability). An earlier version resolved them through a
	// static blackhole and then needed `export where source = RTS_BGP`; that
	// filter ran once per route and client and cost BIRD 10-40% (see
	// docs/benchmarks.md), so it is gone.
	fmt.Fprintf(&s, `router id %s;
log stderr { warning, error, fatal };
protocol device { }
template bgp rrc {
	local %s port %d as %d;
	rr client;
	rr cluster id %s;
	passive on;
	hold time 180;
	ipv4 { import all; export all; };
}
`, routerID, rrAddr, port, benchAS, clusterID)
	inj, mon := peerAddrs(c)
	for i, a := range append(inj, mon...) {
		fmt.Fprintf(&s, "protocol bgp p%d from rrc { neighbor %s as %d; }\n", i, a, benchAS)
	}
	f := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(f, []byte(s.String()), 0o644); err != nil {
		return nil, err
	}
	return []string{b.bin, "-f", "-c", f, "-s", filepath.Join(dir, "bird.ctl"), "-P", filepath.Join(dir, "bird.pid")}, nil
}

type frrImpl struct{ bin string }

func (frrImpl) name() string { return "frr" }
func (b frrImpl) command(dir string, port int, c benchCase) ([]string, error) {
	cfg := fmt.Sprintf(`frr defaults traditional
hostname rr
log stdout warnings
!
router bgp %d
 bgp router-id %s
 bgp cluster-id %s
 no bgp ebgp-requires-policy
 neighbor RRC peer-group
 neighbor RRC remote-as %d
 neighbor RRC timers 60 180
 neighbor RRC passive
 bgp listen limit %d
 bgp listen range 127.0.0.0/8 peer-group RRC
 !
 address-family %s
  neighbor RRC activate
  neighbor RRC route-reflector-client
 exit-address-family
!
`, benchAS, routerID, clusterID, benchAS, max(1000, c.n+c.k+10), map[bool]string{false: "ipv4 unicast", true: "l2vpn evpn"}[c.evpn])
	f := filepath.Join(dir, "bgpd.conf")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return []string{b.bin, "-Z", "-S", "-f", f, "-i", filepath.Join(dir, "bgpd.pid"),
		"--vty_socket", dir, "-P", "0", "-p", strconv.Itoa(port), "-l", rrAddr,
		"--moduledir", dir, "--log", "stdout", "-u", "root", "-g", "root"}, nil
}

type gobgpdImpl struct{ bin string }

func (gobgpdImpl) name() string { return "gobgpd" }
func (b gobgpdImpl) command(dir string, port int, c benchCase) ([]string, error) {
	cfg := fmt.Sprintf(`[global.config]
  as = %d
  router-id = "%s"
  port = %d
  local-address-list = ["%s"]

[[peer-groups]]
  [peer-groups.config]
    peer-group-name = "rrc"
    peer-as = %d
  [peer-groups.timers.config]
    hold-time = 180
    keepalive-interval = 60
  [peer-groups.transport.config]
    passive-mode = true
  [peer-groups.route-reflector.config]
    route-reflector-client = true
    route-reflector-cluster-id = "%s"
  [[peer-groups.afi-safis]]
    [peer-groups.afi-safis.config]
      afi-safi-name = "%s"

[[dynamic-neighbors]]
  [dynamic-neighbors.config]
    prefix = "127.0.0.0/8"
    peer-group = "rrc"
`, benchAS, routerID, port, rrAddr, benchAS, clusterID, map[bool]string{false: "ipv4-unicast", true: "l2vpn-evpn"}[c.evpn])
	f := filepath.Join(dir, "gobgpd.toml")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	api, err := freePort()
	if err != nil {
		return nil, err
	}
	return []string{b.bin, "-f", f, "-t", "toml", "-l", "warn", "-p", "--pprof-disable",
		"--api-hosts", fmt.Sprintf("127.0.0.1:%d", api)}, nil
}

// daemon is a running implementation.
type daemon struct {
	cmd  *exec.Cmd
	dir  string
	log  *lockedBuffer
	done chan struct{}
}

// lockedBuffer is the daemon's output, written by exec's copier.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 1<<20 {
		l.b.Reset()
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startDaemon(ctx context.Context, im impl, port int, c benchCase) (*daemon, error) {
	dir, err := os.MkdirTemp("", "rrbench-"+im.name()+"-")
	if err != nil {
		return nil, err
	}
	args, err := im.command(dir, port, c)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d := &daemon{dir: dir, log: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Dir = dir
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	// Wait until it listens, on a socket of its own.
	for !listensOn(d.cmd.Process.Pid, port) {
		select {
		case <-d.done:
			d.stop()
			return nil, fmt.Errorf("%s exited: %s", im.name(), d.logTail())
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return d, nil
}

// stop kills the daemon's process group and removes its directory.
func (d *daemon) stop() {
	if d.cmd.Process != nil {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
		}
	}
	os.RemoveAll(d.dir)
}

func (d *daemon) logTail() string {
	s := strings.TrimSpace(d.log.String())
	if len(s) > 400 {
		s = "..." + s[len(s)-400:]
	}
	return s
}

// cpuTime is the daemon's user+system CPU time so far.
func (d *daemon) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// peakRSS is the daemon's VmHWM in KiB.
func (d *daemon) peakRSS() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

// freePort picks a free port below the kernel's ephemeral range, so that
// no other program's ":0" listener or outgoing connection takes it
// between our check and the daemon's bind; listensOn confirms it after.
func freePort() (int, error) {
	for range 100 {
		port := 20000 + rand.IntN(10000)
		l, err := net.Listen("tcp", net.JoinHostPort(rrAddr, strconv.Itoa(port)))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port in 20000-29999")
}

// listensOn reports whether process pid (not some other program) has a
// TCP socket listening on port: it matches the socket inodes of the
// process's descriptors against the listening sockets of /proc/net/tcp.
func listensOn(pid, port int) bool {
	inodes := map[string]bool{}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(l, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && strings.HasSuffix(f[1], want) && f[3] == "0A" && inodes[f[9]] {
			return true
		}
	}
	return false
}

// benchFilter is a filter of n rules per direction (importV4 and
// exportV4) as an operator writes one for a client: n-2 rules that reject
// bogons and other sites' ranges (none matches the benchmark's prefixes,
// so every route is tried against all of them), a reject of a blackhole
// community (which reads the route's communities), and a last rule that
// accepts the fabric's range, on export tagging it with a community.
func benchFilter(n int) string {
	var rules strings.Builder
	bogons := []string{"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4"}
	for i := range n - 2 {
		cidr := fmt.Sprintf("100.%d.0.0/16", i%256) // other sites: 100.0-255 (not the bench's 11.0.0.0 and up)
		if i < len(bogons) {
			cidr = bogons[i]
		}
		fmt.Fprintf(&rules, "      - {cidr: %s, matchOperator: In, action: Reject}\n", cidr)
	}
	rules.WriteString("      - {communities: [\"65535:666\"], action: Reject}\n")
	const accept = "      - {cidr: 0.0.0.0/0, matchOperator: In, prefixLength: {max: 24}, action: Accept%s}\n"
	return "filters:\n  - name: bench\n    importV4:\n" + rules.String() + fmt.Sprintf(accept, "") +
		"    exportV4:\n" + rules.String() + fmt.Sprintf(accept, `, addCommunities: ["64512:1"]`)
}
