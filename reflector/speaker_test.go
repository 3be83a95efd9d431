package reflector

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// rawSpeaker is a light BGP speaker for tests and benchmarks: it speaks the
// wire protocol directly with the codec, without GoBGP's server.
type rawSpeaker struct {
	conn net.Conn
	br   *bufio.Reader
	open *bgp.BGPOpen // the reflector's OPEN
}

type speakerOpts struct {
	asn     uint32
	id      string
	hold    uint16
	addPath bool // advertise add-path receive
	gr      bool
	grTime  uint16 // restart time we advertise; 0 means 120 s
	// llgr is the long-lived stale time we advertise for IPv4 (with the
	// F bit unless llgrNoF): zero advertises no LLGR capability.
	llgr    uint32
	llgrNoF bool
	// grFams are the families of the graceful restart and LLGR
	// capabilities; nil: IPv4 unicast.
	grFams []bgp.RouteFamily
	noAS4  bool
	fams   []bgp.RouteFamily // multiprotocol families; nil: IPv4 and IPv6 unicast
	extMsg bool              // advertise RFC 8654 extended messages
}

func speakerOpen(o speakerOpts) []byte {
	fams := o.fams
	if fams == nil {
		fams = []bgp.RouteFamily{bgp.RF_IPv4_UC, bgp.RF_IPv6_UC}
	}
	var caps []bgp.ParameterCapabilityInterface
	for _, f := range fams {
		caps = append(caps, bgp.NewCapMultiProtocol(f))
	}
	caps = append(caps, bgp.NewCapRouteRefresh())
	if o.extMsg {
		caps = append(caps, bgp.NewCapUnknown(capExtendedMessage, nil))
	}
	if !o.noAS4 {
		caps = append(caps, bgp.NewCapFourOctetASNumber(o.asn))
	}
	if o.addPath {
		var tuples []*bgp.CapAddPathTuple
		for _, f := range fams {
			tuples = append(tuples, bgp.NewCapAddPathTuple(f, bgp.BGP_ADD_PATH_RECEIVE))
		}
		caps = append(caps, bgp.NewCapAddPath(tuples))
	}
	grFams := o.grFams
	if grFams == nil {
		grFams = []bgp.RouteFamily{bgp.RF_IPv4_UC}
	}
	if o.gr {
		t := o.grTime
		if t == 0 {
			t = 120
		}
		var tuples []*bgp.CapGracefulRestartTuple
		for _, f := range grFams {
			tuples = append(tuples, bgp.NewCapGracefulRestartTuple(f, true))
		}
		caps = append(caps, bgp.NewCapGracefulRestart(false, false, t, tuples))
	}
	if o.llgr > 0 {
		var tuples []*bgp.CapLongLivedGracefulRestartTuple
		for _, f := range grFams {
			tuples = append(tuples, bgp.NewCapLongLivedGracefulRestartTuple(f, !o.llgrNoF, o.llgr))
		}
		caps = append(caps, bgp.NewCapLongLivedGracefulRestart(tuples))
	}
	b, err := bgp.NewBGPOpenMessage(uint16(o.asn), o.hold, o.id,
		[]bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}).Serialize()
	if err != nil {
		panic(err)
	}
	return b
}

// handshake runs the OPEN exchange over conn and returns the speaker.
func handshake(conn net.Conn, o speakerOpts) (*rawSpeaker, error) {
	s := &rawSpeaker{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	if _, err := conn.Write(speakerOpen(o)); err != nil {
		return nil, err
	}
	m, err := s.next()
	if err != nil {
		return nil, err
	}
	if n, ok := m.Body.(*bgp.BGPNotification); ok {
		return nil, fmt.Errorf("notification %d/%d", n.ErrorCode, n.ErrorSubcode)
	}
	open, ok := m.Body.(*bgp.BGPOpen)
	if !ok {
		return nil, fmt.Errorf("expected OPEN, got %T", m.Body)
	}
	s.open = open
	if _, err := conn.Write(keepaliveMsg); err != nil {
		return nil, err
	}
	if m, err = s.next(); err != nil {
		return nil, err
	}
	if n, ok := m.Body.(*bgp.BGPNotification); ok {
		return nil, fmt.Errorf("notification %d/%d", n.ErrorCode, n.ErrorSubcode)
	}
	if m.Header.Type != bgp.BGP_MSG_KEEPALIVE {
		return nil, fmt.Errorf("expected KEEPALIVE, got %T", m.Body)
	}
	return s, nil
}

func dialSpeaker(ctx context.Context, raddr netip.AddrPort, laddr string, o speakerOpts) (*rawSpeaker, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(laddr)}}
	conn, err := d.DialContext(ctx, "tcp", raddr.String())
	if err != nil {
		return nil, err
	}
	s, err := handshake(conn, o)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return s, nil
}

// rawMessage reads one message's bytes.
func (s *rawSpeaker) rawMessage() ([]byte, error) {
	head, err := s.br.Peek(headerLen)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(head[16:]))
	buf := make([]byte, n)
	_, err = io.ReadFull(s.br, buf)
	return buf, err
}

// next reads and parses one message (add-path aware for received UPDATEs).
func (s *rawSpeaker) next(opts ...*bgp.MarshallingOption) (*bgp.BGPMessage, error) {
	b, err := s.rawMessage()
	if err != nil {
		return nil, err
	}
	return bgp.ParseBGPMessage(b, opts...)
}

// nextUpdate skips KEEPALIVEs and returns the next UPDATE.
func (s *rawSpeaker) nextUpdate(addPath bool) (*bgp.BGPUpdate, error) {
	var opts []*bgp.MarshallingOption
	if addPath {
		opts = append(opts, &bgp.MarshallingOption{AddPath: map[bgp.RouteFamily]bgp.BGPAddPathMode{
			bgp.RF_IPv4_UC: bgp.BGP_ADD_PATH_RECEIVE, bgp.RF_IPv6_UC: bgp.BGP_ADD_PATH_RECEIVE}})
	}
	for {
		m, err := s.next(opts...)
		if err != nil {
			return nil, err
		}
		switch b := m.Body.(type) {
		case *bgp.BGPUpdate:
			return b, nil
		case *bgp.BGPNotification:
			return nil, fmt.Errorf("notification %d/%d", b.ErrorCode, b.ErrorSubcode)
		}
	}
}

func (s *rawSpeaker) send(t testing.TB, msgs ...*bgp.BGPMessage) {
	t.Helper()
	for _, m := range msgs {
		b, err := m.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.conn.Write(b); err != nil {
			t.Fatal(err)
		}
	}
}

// countPrefixes counts the IPv4 NLRI and withdrawn prefixes of an UPDATE
// without the codec, for the benchmark monitors.
func countPrefixes(msg []byte, addPath bool) (ann, wd int, eor bool) {
	if len(msg) < headerLen+4 || msg[18] != bgp.BGP_MSG_UPDATE {
		return 0, 0, false
	}
	body := msg[headerLen:]
	wl := int(binary.BigEndian.Uint16(body))
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	parseNLRI(famV4, body[2:2+wl], addPath, func(pfxKey, uint32) { wd++ })
	parseNLRI(famV4, body[4+wl+al:], addPath, func(pfxKey, uint32) { ann++ })
	return ann, wd, wl == 0 && al == 0
}

// ipv4Update builds an UPDATE announcing prefixes with the given next hop
// and extra attributes.
func ipv4Update(nh string, prefixes []netip.Prefix, extra ...bgp.PathAttributeInterface) *bgp.BGPMessage {
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(0),
		bgp.NewPathAttributeAsPath(nil),
		bgp.NewPathAttributeNextHop(nh),
	}
	hasLP := false
	for _, e := range extra {
		hasLP = hasLP || e.GetType() == bgp.BGP_ATTR_TYPE_LOCAL_PREF
	}
	if !hasLP {
		attrs = append(attrs, bgp.NewPathAttributeLocalPref(100))
	}
	attrs = append(attrs, extra...)
	nlri := make([]*bgp.IPAddrPrefix, len(prefixes))
	for i, p := range prefixes {
		nlri[i] = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
	}
	return bgp.NewBGPUpdateMessage(nil, attrs, nlri)
}

func ipv4Withdraw(prefixes []netip.Prefix) *bgp.BGPMessage {
	w := make([]*bgp.IPAddrPrefix, len(prefixes))
	for i, p := range prefixes {
		w[i] = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
	}
	return bgp.NewBGPUpdateMessage(w, nil, nil)
}

// startReflector runs a reflector on 127.0.0.1:0 until the test ends.
func startReflector(t testing.TB, cfg Config) (*Reflector, netip.AddrPort) {
	t.Helper()
	r, addr, stop := runReflector(t, cfg)
	t.Cleanup(stop)
	return r, addr
}

// runReflector runs a reflector on 127.0.0.1:0 until stop is called.
func runReflector(t testing.TB, cfg Config) (*Reflector, netip.AddrPort, func()) {
	t.Helper()
	if len(cfg.ListenAddrs) == 0 {
		cfg.ListenAddrs = []string{"127.0.0.1:0"}
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { stopOnce(t, cancel, done) }) }
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return r, r.ListenAddrs()[0], stop
}

func stopOnce(t testing.TB, cancel func(), done chan error) {
	{
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Errorf("Run did not return; goroutines:\n%s", b.String())
		}
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReaderSize(c, 64<<10) }
