package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// wirePeer is a minimal BGP speaker on the codec: the reflector dials it.
type wirePeer struct {
	ln   *net.TCPListener
	port int
	conn net.Conn
	br   *bufio.Reader
}

func listenPeer(t testing.TB, addr string) *wirePeer {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.ParseIP(addr)})
	if err != nil {
		t.Fatal(err)
	}
	p := &wirePeer{ln: ln, port: ln.Addr().(*net.TCPAddr).Port}
	t.Cleanup(func() {
		ln.Close()
		if p.conn != nil {
			p.conn.Close()
		}
	})
	return p
}

// establish accepts the reflector's connection and runs the OPEN
// exchange.
func (p *wirePeer) establish(t testing.TB, id string) {
	t.Helper()
	p.ln.SetDeadline(time.Now().Add(20 * time.Second))
	c, err := p.ln.Accept()
	if err != nil {
		t.Fatalf("waiting for the reflector's connection to %v: %v", p.ln.Addr(), err)
	}
	p.conn, p.br = c, bufio.NewReader(c)
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapFourOctetASNumber(64512)}
	p.send(t, bgp.NewBGPOpenMessage(64512, 90, id, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}))
	if m := p.next(t); m.Header.Type != bgp.BGP_MSG_OPEN {
		t.Fatalf("got %T, want OPEN", m.Body)
	}
	p.send(t, bgp.NewBGPKeepAliveMessage())
	if m := p.next(t); m.Header.Type != bgp.BGP_MSG_KEEPALIVE {
		t.Fatalf("got %T, want KEEPALIVE", m.Body)
	}
}

func (p *wirePeer) send(t testing.TB, m *bgp.BGPMessage) {
	t.Helper()
	b, err := m.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (p *wirePeer) next(t testing.TB) *bgp.BGPMessage {
	t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	head := make([]byte, 19)
	if _, err := io.ReadFull(p.br, head); err != nil {
		t.Fatalf("reading: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint16(head[16:]))
	copy(buf, head)
	if _, err := io.ReadFull(p.br, buf[19:]); err != nil {
		t.Fatalf("reading: %v", err)
	}
	m, err := bgp.ParseBGPMessage(buf)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// notification reads until a NOTIFICATION.
func (p *wirePeer) notification(t testing.TB) *bgp.BGPNotification {
	t.Helper()
	for {
		if n, ok := p.next(t).Body.(*bgp.BGPNotification); ok {
			return n
		}
	}
}

func update(nh string, attrs []bgp.PathAttributeInterface, prefixes ...string) *bgp.BGPMessage {
	base := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(0), bgp.NewPathAttributeNextHop(nh)}
	if !slices.ContainsFunc(attrs, func(a bgp.PathAttributeInterface) bool { return a.GetType() == bgp.BGP_ATTR_TYPE_AS_PATH }) {
		base = append(base, bgp.NewPathAttributeAsPath(nil))
	}
	attrs = append(base, attrs...)
	var nlri []*bgp.IPAddrPrefix
	for _, s := range prefixes {
		p := netip.MustParsePrefix(s)
		nlri = append(nlri, bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String()))
	}
	return bgp.NewBGPUpdateMessage(nil, attrs, nlri)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCLI runs one bgpfabric command line and returns its output.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd(strings.NewReader(""), &out, &errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func reflectorConfig(neighbors string) string {
	return "routerID: 10.255.0.1\nasNumber: 64512\nclusterID: 10.255.255.1\nlisten: [\"127.0.0.1:0\"]\nneighbors:\n" + neighbors
}

// TestReflectorShowAndReload runs the real `bgpfabric reflector` command
// with a configuration file and a control socket, with one neighbour that
// sends known routes; `reflector show` prints them (table, detail and
// JSON; exact prefix, longest match, unknown prefix) and the summary;
// then SIGHUP reloads the file: the removed neighbour receives Cease 6/3,
// the added one is dialled.
func TestReflectorShowAndReload(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "reflector.sock")
	conf := filepath.Join(dir, "reflector.yaml")
	a := listenPeer(t, "127.0.0.2")
	b := listenPeer(t, "127.0.0.3")
	write := func(neighbors string) {
		if err := os.WriteFile(conf, []byte(reflectorConfig(neighbors)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("- {address: 127.0.0.2, port: %d, description: rack 2}\n", a.port))

	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		cmd := newRootCmd(strings.NewReader(""), io.Discard, &logs)
		cmd.SetArgs([]string{"reflector", "--config", conf, "--http-addr", "", "--gc-percent", "100",
			"--control-socket", sock, "--shutdown-wait", "0s"})
		done <- cmd.ExecuteContext(ctx)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("reflector: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("reflector did not stop")
		}
	}()
	a.establish(t, "10.0.0.2")
	a.send(t, update("192.0.2.2", []bgp.PathAttributeInterface{bgp.NewPathAttributeLocalPref(200),
		bgp.NewPathAttributeCommunities([]uint32{64512<<16 | 7}), bgp.NewPathAttributeMultiExitDisc(5)},
		"10.1.0.0/16", "10.0.0.0/8"))
	a.send(t, update("192.0.2.2", []bgp.PathAttributeInterface{bgp.NewPathAttributeLocalPref(100),
		bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, []uint32{65001, 65002})})},
		"10.2.0.0/24"))
	// The routes are in once the summary counts them (the socket answers
	// once the command serves it).
	summary := waitSummary(t, sock, func(s reflector.Summary) bool {
		return len(s.Families) > 0 && s.Families[0].Paths == 3
	})
	if len(summary.Neighbors) != 1 || summary.Neighbors[0].State != "Established" || summary.Neighbors[0].PrefixesReceived != 3 {
		t.Errorf("summary neighbours %+v, want 127.0.0.2 Established with 3 prefixes received", summary.Neighbors)
	}

	show := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, append([]string{"reflector", "show", "--control-socket", sock}, args...)...)
		if err != nil {
			t.Fatalf("show %v: %v", args, err)
		}
		return out
	}
	// The summary's up/down time varies, and with it the column's width.
	uptime := regexp.MustCompile(`Established  +\S+ +`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"summary"}, `Reflector 10.255.0.1, AS 64512, cluster ID 10.255.255.1

FAMILY        PREFIXES  PATHS
ipv4-unicast  3         3
ipv6-unicast  0         0

Neighbours (1)
NEIGHBOR   AS     STATE        UP/DOWN  RECEIVED  ACCEPTED  SENT  DESCRIPTION
127.0.0.2  64512  Established  T3         3         0     rack 2 (client)
`},
		{[]string{"routes"}, `    PREFIX       NEXT HOP   FROM                  AS PATH      LOCAL PREF  COMMUNITIES
*>  10.0.0.0/8   192.0.2.2  127.0.0.2 (AS 64512)  -            200         64512:7
*>  10.1.0.0/16  192.0.2.2  127.0.0.2 (AS 64512)  -            200         64512:7
*>  10.2.0.0/24  192.0.2.2  127.0.0.2 (AS 64512)  65001 65002  100         -
`},
		// Longest match: 10.1.2.3 is in 10.1.0.0/16 and 10.0.0.0/8.
		{[]string{"routes", "10.1.2.3", "--detail"}, `10.1.0.0/16 (ipv4-unicast), 1 path(s)
  *> from 127.0.0.2 (AS 64512), next hop 192.0.2.2
     origin igp, AS path -, local pref 200, MED 5
     communities 64512:7
`},
		{[]string{"routes", "10.2.0.0/24", "-o", "json"}, `[
  {"prefix":"10.2.0.0/24","family":"ipv4-unicast","paths":[{"peer":"127.0.0.2","peerAS":64512,"nextHop":"192.0.2.2","origin":"igp","asPath":[65001,65002],"localPref":100,"med":0,"best":true,"stale":false}]}
]
`},
		{[]string{"routes", "--family", "ipv6-unicast"}, ``},
	} {
		got := uptime.ReplaceAllString(show(tc.args...), "Established  T")
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("show %v (-want +got):\n%s", tc.args, d)
		}
	}
	// The JSON of every route is one array that decodes.
	var all []reflector.RouteDestination
	if err := json.Unmarshal([]byte(show("routes", "-o", "json")), &all); err != nil || len(all) != 3 {
		t.Errorf("routes -o json: %d destinations, err %v; want 3", len(all), err)
	}
	if out, err := runCLI(t, "reflector", "show", "--control-socket", sock, "routes", "192.0.2.0/24"); err == nil || !strings.Contains(err.Error(), "no route") {
		t.Errorf("unknown prefix: %q, %v; want a no-route error", out, err)
	}
	if _, err := runCLI(t, "reflector", "show", "--control-socket", sock, "routes", "--family", "l2vpn-nonesuch"); err == nil || !strings.Contains(err.Error(), "family") {
		t.Errorf("unknown family: %v, want an error naming the family", err)
	}
	nb := show("neighbors", "127.0.0.2")
	for _, want := range []string{"Neighbor 127.0.0.2, AS 64512, route-reflector client", "Description: rack 2",
		"Remote router ID 10.0.0.2", "Hold time 90s (configured 90s), keepalive 30s", "Families: ipv4-unicast;",
		"Prefixes: received 3, accepted 3, sent 0", "Last error: -"} {
		if !strings.Contains(nb, want) {
			t.Errorf("show neighbors: no %q in\n%s", want, nb)
		}
	}
	var nj []map[string]any
	if err := json.Unmarshal([]byte(show("neighbors", "-o", "json")), &nj); err != nil || len(nj) != 1 {
		t.Fatalf("neighbors -o json: %v, %d neighbours", err, len(nj))
	}
	for k, want := range map[string]any{"address": "127.0.0.2", "description": "rack 2", "state": "Established",
		"remoteRouterID": "10.0.0.2", "holdTimeSeconds": 90.0, "prefixesReceived": 3.0, "families": []any{"ipv4-unicast"}} {
		if d := cmp.Diff(want, nj[0][k]); d != "" {
			t.Errorf("neighbors -o json: %s (-want +got):\n%s", k, d)
		}
	}
	if _, err := runCLI(t, "reflector", "show", "--control-socket", sock, "neighbors", "127.0.0.9"); err == nil || !strings.Contains(err.Error(), "no neighbour") {
		t.Errorf("show neighbors of an unknown address: %v", err)
	}

	// SIGHUP: 127.0.0.2 removed (Cease 6/3 on its session), 127.0.0.3
	// added (the reflector dials it).
	write(fmt.Sprintf("- {address: 127.0.0.3, port: %d}\n", b.port))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if n := a.notification(t); n.ErrorCode != bgp.BGP_ERROR_CEASE || n.ErrorSubcode != bgp.BGP_ERROR_SUB_PEER_DECONFIGURED {
		t.Errorf("removed neighbour got NOTIFICATION %d/%d, want 6/3", n.ErrorCode, n.ErrorSubcode)
	}
	b.establish(t, "10.0.0.3")
	// The line is logged once the whole reload is applied, which may be
	// after the new session came up.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "configuration reloaded"); {
		if time.Now().After(deadline) {
			t.Fatalf("no reload log line in:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling a log buffer: no event for it
	}
}

// waitSummary asks the control socket until ok holds.
func waitSummary(t *testing.T, sock string, ok func(reflector.Summary) bool) reflector.Summary {
	t.Helper()
	o := &showOptions{socket: sock, output: "json"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var s reflector.Summary
	var err error
	for {
		s = reflector.Summary{}
		if err = o.get(ctx, "/show/summary", &s); err == nil && ok(s) {
			return s
		}
		select {
		case <-ctx.Done():
			t.Fatalf("summary %+v, err %v", s, err)
		case <-tick.C:
		}
	}
}

// flushRecorder is a ResponseWriter that counts the lines written between
// flushes.
type flushRecorder struct {
	header  http.Header
	status  int
	lines   int // since the last flush
	maxRun  int // most lines between two flushes
	total   int
	flushes int
}

func (f *flushRecorder) Header() http.Header {
	if f.header == nil {
		f.header = http.Header{}
	}
	return f.header
}
func (f *flushRecorder) WriteHeader(s int) { f.status = s }
func (f *flushRecorder) Write(p []byte) (int, error) {
	n := bytes.Count(p, []byte("\n"))
	f.lines += n
	f.total += n
	f.maxRun = max(f.maxRun, f.lines)
	return len(p), nil
}
func (f *flushRecorder) Flush() { f.flushes++; f.lines = 0 }

// TestShowRoutesStreams: GET /show/routes of a RIB of several chunks
// writes and flushes one chunk at a time (never the whole RIB at once),
// and every destination once.
func TestShowRoutesStreams(t *testing.T) {
	const n = 2*reflector.RouteChunk + 300
	ctx, r := reflectorWithRoutes(t, 30*time.Second, n, func(i int) string { return fmt.Sprintf("20.%d.%d.0/24", i>>8, i&0xff) })
	mux := http.NewServeMux()
	registerShowHandlers(mux, fileEngine{r}, slog.New(slog.DiscardHandler))
	rec := &flushRecorder{}
	mux.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, "/show/routes", nil))
	if rec.status != 0 && rec.status != http.StatusOK {
		t.Fatalf("status %d", rec.status)
	}
	if rec.total != n || rec.flushes < 3 || rec.maxRun > reflector.RouteChunk {
		t.Errorf("%d destinations in %d flushes, at most %d between two; want %d in at least 3, at most %d between two",
			rec.total, rec.flushes, rec.maxRun, n, reflector.RouteChunk)
	}
}

// reflectorWithRoutes runs a reflector with one neighbour, 127.0.0.2,
// which sends it n /24s (prefix(i) for i < n, 500 per UPDATE), and returns
// once its RIB holds them all; the reflector stops when the test ends.
func reflectorWithRoutes(tb testing.TB, timeout time.Duration, n int, prefix func(int) string) (context.Context, *reflector.Reflector) {
	tb.Helper()
	a := listenPeer(tb, "127.0.0.2")
	cfg, err := reflector.ParseConfigFile([]byte(reflectorConfig(fmt.Sprintf("- {address: 127.0.0.2, port: %d}\n", a.port))))
	if err != nil {
		tb.Fatal(err)
	}
	r, err := reflector.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	runCtx, stopRun := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	tb.Cleanup(func() { stopRun(); <-done; cancel() })
	a.establish(tb, "10.0.0.2")
	var batch []string
	for i := range n {
		batch = append(batch, prefix(i))
		if len(batch) == 500 || i == n-1 {
			a.send(tb, update("192.0.2.2", nil, batch...))
			batch = batch[:0]
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if st, ok := r.RIBStats(ctx); ok && st.Paths == n {
			return ctx, r
		}
		select {
		case <-ctx.Done():
			tb.Fatal("routes did not arrive")
		case <-tick.C:
		}
	}
}
