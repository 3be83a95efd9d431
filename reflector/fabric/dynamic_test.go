package fabric

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/reflector"
)

// testStore starts an embedded etcd on a unix socket in a temporary
// directory and returns a client; both go when the test ends.
func testStore(t *testing.T, ctx context.Context) *datastore.Client {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil { // the etcd socket's directory must be private
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: filepath.Join(dir, "data"), Listen: "unix://" + filepath.Join(dir, "sock", "etcd.sock"), Logger: log}) // sock: created 0700 for the socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{e.ClientEndpoint()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runController runs a controller for Node rr1 on 127.0.0.1 until the
// test ends and returns its reflector once ready.
func runController(t *testing.T, ctx context.Context, c *datastore.Client, cfg Config) *reflector.Reflector {
	t.Helper()
	cfg.Client, cfg.Node, cfg.ListenAddrs = c, "rr1", []string{"127.0.0.1:0"}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctrl, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-ctrl.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return ctrl.Reflector()
}

// bgpOpen is a client's OPEN: IPv4 and IPv6 unicast, 4-octet AS.
func bgpOpen(asn uint32, id string) []byte {
	caps := []bgp.ParameterCapabilityInterface{
		bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC),
		bgp.NewCapFourOctetASNumber(asn),
	}
	b, err := bgp.NewBGPOpenMessage(uint16(asn), 90, id, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}).Serialize()
	if err != nil {
		panic(err)
	}
	return b
}

func readMsg(r io.Reader) (*bgp.BGPMessage, error) {
	head := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(head[16:]))
	if n < bgp.BGP_HEADER_LENGTH {
		return nil, fmt.Errorf("bad length %d", n)
	}
	buf := append(head, make([]byte, n-bgp.BGP_HEADER_LENGTH)...)
	if _, err := io.ReadFull(r, buf[bgp.BGP_HEADER_LENGTH:]); err != nil {
		return nil, err
	}
	return bgp.ParseBGPMessage(buf)
}

// bgpClient connects from local (a loopback address) to the reflector and
// runs the OPEN exchange; it returns the connection once Established.
func bgpClient(ctx context.Context, to netip.AddrPort, local string, asn uint32, id string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.DialContext(ctx, "tcp", to.String())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fail := func(err error) (net.Conn, error) { c.Close(); return nil, err }
	if _, err := c.Write(bgpOpen(asn, id)); err != nil {
		return fail(err)
	}
	sentKeepalive := false
	for {
		m, err := readMsg(c)
		if err != nil {
			return fail(err)
		}
		switch b := m.Body.(type) {
		case *bgp.BGPNotification:
			return fail(fmt.Errorf("notification %d/%d", b.ErrorCode, b.ErrorSubcode))
		case *bgp.BGPOpen:
			ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
			if _, err := c.Write(ka); err != nil {
				return fail(err)
			}
			sentKeepalive = true
		case *bgp.BGPKeepAlive:
			if sentKeepalive {
				c.SetDeadline(time.Time{})
				return c, nil
			}
		}
	}
}

// waitNotification reads until a NOTIFICATION and returns its codes.
func waitNotification(c net.Conn) (code, subcode uint8, err error) {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		m, err := readMsg(c)
		if err != nil {
			return 0, 0, err
		}
		if n, ok := m.Body.(*bgp.BGPNotification); ok {
			return n.ErrorCode, n.ErrorSubcode, nil
		}
	}
}

func rangePeer(prefix string) *api.BGPPeer {
	return &api.BGPPeer{
		TypeMeta: api.TypeMeta{Kind: api.KindBGPPeer}, ObjectMeta: api.ObjectMeta{Name: "loopback-clients"},
		Spec: api.BGPPeerSpec{NodeSelector: "has(rr)", PeerPrefix: prefix},
	}
}

// TestControllerPeerPrefix: a BGPPeer with peerPrefix selecting the
// reflector makes it accept clients from that range (as route-reflector
// clients in its AS) and refuse the others; changing the range closes the
// clients it no longer covers and admits the new ones.
func TestControllerPeerPrefix(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testStore(t, ctx)
	for _, r := range []api.Resource{
		node("rr1", "10.0.0.1/24", map[string]string{"rr": "true"}, "10.0.0.1"),
		node("n2", "10.0.0.2/24", nil, ""),
		rangePeer("127.0.0.0/29"),
	} {
		if _, err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	r := runController(t, ctx, c, Config{})
	addr := r.ListenAddrs()[0]

	in, err := bgpClient(ctx, addr, "127.0.0.2", 64512, "10.1.0.2")
	if err != nil {
		t.Fatalf("client from inside the range: %v", err)
	}
	defer in.Close()
	if out, err := bgpClient(ctx, addr, "127.0.0.9", 64512, "10.1.0.9"); err == nil {
		out.Close()
		t.Fatal("a client from outside the range established")
	}
	// The client is Established once it has the reflector's KEEPALIVE; the
	// reflector, once it has read the client's: wait for that.
	ns := r.Neighbors()
	for (len(ns) != 1 || ns[0].State != reflector.StateEstablished) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		ns = r.Neighbors()
	}
	if len(ns) != 1 || ns[0].Address != "127.0.0.2" || !ns[0].Dynamic || !ns[0].Client || ns[0].ASN != 64512 || ns[0].State != reflector.StateEstablished {
		t.Fatalf("neighbours %+v, want the dynamic client 127.0.0.2, Established", ns)
	}

	// Move the range: the old client goes, one from the new range comes.
	p, err := c.Get(ctx, api.KindBGPPeer, "", "loopback-clients")
	if err != nil {
		t.Fatal(err)
	}
	p.(*api.BGPPeer).Spec.PeerPrefix = "127.0.1.0/29"
	if _, err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	if code, sub, err := waitNotification(in); err != nil || code != bgp.BGP_ERROR_CEASE || sub != bgp.BGP_ERROR_SUB_PEER_DECONFIGURED {
		t.Errorf("old range's client: notification %d/%d, %v; want Cease/de-configured", code, sub, err)
	}
	moved, err := bgpClient(ctx, addr, "127.0.1.2", 64512, "10.1.1.2")
	if err != nil {
		t.Fatalf("client from the new range: %v", err)
	}
	moved.Close()
	if again, err := bgpClient(ctx, addr, "127.0.0.3", 64512, "10.1.0.3"); err == nil {
		again.Close()
		t.Error("a client from the old range established after the change")
	}
}

// statusWatch follows this node's BGPStatus writes.
type statusWatch struct {
	ch     <-chan datastore.WatchEvent
	writes int
	last   *api.BGPStatus
}

func watchStatus(ctx context.Context, c *datastore.Client) *statusWatch {
	return &statusWatch{ch: c.Watch(ctx, api.KindBGPStatus, "", 0)}
}

// until reads status writes until cond holds for the latest one, or the
// deadline passes.
func (w *statusWatch) until(t *testing.T, within time.Duration, what string, cond func(*api.BGPStatus) bool) {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for w.last == nil || !cond(w.last) {
		select {
		case ev, ok := <-w.ch:
			if !ok {
				t.Fatal("status watch ended")
			}
			if st, ok := ev.Resource.(*api.BGPStatus); ok && st.Name == "rr1" && ev.Type != datastore.Deleted {
				w.writes++
				w.last = st
			}
		case <-timer.C:
			t.Fatalf("BGPStatus within %v: %s not seen (last %+v)", within, what, w.last)
		}
	}
}

func peerState(st *api.BGPStatus, addr string) (api.BGPPeerStatus, bool) {
	for _, p := range st.Status.Peers {
		if p.PeerIP == addr {
			return p, true
		}
	}
	return api.BGPPeerStatus{}, false
}

// TestStatusOnSessionChange: with the periodic write an hour apart,
// BGPStatus still follows sessions: a client going Established and going
// away show up within seconds (writes are at least a second apart:
// internal/latest); and a burst of clients coming up is
// coalesced into a few writes, not one per client.
func TestStatusOnSessionChange(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := testStore(t, ctx)
	for _, r := range []api.Resource{
		node("rr1", "10.0.0.1/24", map[string]string{"rr": "true"}, "10.0.0.1"),
		rangePeer("127.0.2.0/24"),
	} {
		if _, err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	w := watchStatus(ctx, c)
	r := runController(t, ctx, c, Config{StatusInterval: time.Hour})
	addr := r.ListenAddrs()[0]
	w.until(t, 5*time.Second, "the first write", func(st *api.BGPStatus) bool { return len(st.Status.Peers) == 0 })

	cl, err := bgpClient(ctx, addr, "127.0.2.1", 64512, "10.2.0.1")
	if err != nil {
		t.Fatal(err)
	}
	w.until(t, 5*time.Second, "127.0.2.1 Established", func(st *api.BGPStatus) bool {
		p, ok := peerState(st, "127.0.2.1")
		return ok && p.State == api.BGPEstablished && p.Type == api.PeerTypeReflectorClient
	})
	cl.Close()
	w.until(t, 5*time.Second, "127.0.2.1 gone", func(st *api.BGPStatus) bool {
		_, ok := peerState(st, "127.0.2.1")
		return !ok
	})

	// A burst: 20 clients.
	const n = 20
	before := w.writes
	for i := range n {
		cl, err := bgpClient(ctx, addr, fmt.Sprintf("127.0.2.%d", 10+i), 64512, fmt.Sprintf("10.2.0.%d", 10+i))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
	}
	w.until(t, 5*time.Second, "all 20 Established", func(st *api.BGPStatus) bool {
		up := 0
		for _, p := range st.Status.Peers {
			if p.State == api.BGPEstablished {
				up++
			}
		}
		return up == n
	})
	if got := w.writes - before; got > n/2 {
		t.Errorf("%d BGPStatus writes for %d clients coming up, want them coalesced (at most %d)", got, n, n/2)
	} else {
		t.Logf("%d clients up: %d BGPStatus writes", n, got)
	}
}
