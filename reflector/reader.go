package reflector

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// maxBatchPrefixes bounds how many prefixes a reader collects from
// already-buffered UPDATEs before it hands them to the RIB loop.
const maxBatchPrefixes = 8192

// maxBatchRaw bounds the UPDATEs a batch keeps as received for the
// monitor (monitor.go): at most 256 messages (1 MiB of 4,096-byte ones,
// 16 MiB with RFC 8654 extended messages).
const maxBatchRaw = 256

// readMessage reads one message of at most 4,096 bytes.
func readMessage(br *bufio.Reader) (*bgp.BGPHeader, []byte, error) {
	return readMessageMax(br, maxMsgLen)
}

// readMessageMax reads one message of at most maxLen bytes (65,535 once
// RFC 8654 extended messages are negotiated). The header is checked here
// (marker, length, type) so that a bad one never reaches the codec.
func readMessageMax(br *bufio.Reader, maxLen int) (*bgp.BGPHeader, []byte, error) {
	head, err := br.Peek(headerLen)
	if err != nil {
		return nil, nil, connErr(err)
	}
	for _, b := range head[:16] {
		if b != 0xff {
			return nil, nil, newNotify(bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_CONNECTION_NOT_SYNCHRONIZED, "bad marker")
		}
	}
	hdr := &bgp.BGPHeader{Len: binary.BigEndian.Uint16(head[16:18]), Type: head[18]}
	if hdr.Len < headerLen || int(hdr.Len) > maxLen {
		e := newNotify(bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH, "bad length")
		e.data = append([]byte(nil), head[16:18]...)
		return nil, nil, e
	}
	if hdr.Type < bgp.BGP_MSG_OPEN || hdr.Type > bgp.BGP_MSG_ROUTE_REFRESH {
		e := newNotify(bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_BAD_MESSAGE_TYPE, "bad type")
		e.data = []byte{hdr.Type}
		return nil, nil, e
	}
	if !lengthFits(hdr) {
		e := newNotify(bgp.BGP_ERROR_MESSAGE_HEADER_ERROR, bgp.BGP_ERROR_SUB_BAD_MESSAGE_LENGTH, "bad length for the message type")
		e.data = append([]byte(nil), head[16:18]...)
		return nil, nil, e
	}
	copy(hdr.Marker[:], head[:16])
	body := make([]byte, int(hdr.Len)-headerLen)
	if _, err := br.Discard(headerLen); err != nil {
		return nil, nil, connErr(err)
	}
	if _, err := io.ReadFull(br, body); err != nil {
		return nil, nil, connErr(err)
	}
	return hdr, body, nil
}

// lengthFits applies RFC 4271 6.1's per-type length rules: the minimum
// of OPEN and UPDATE, and a KEEPALIVE of the header alone. ROUTE-REFRESH
// lengths are checked in Established (RFC 7313 5 gives them their own
// error code); a short NOTIFICATION ends the session all the same, and
// RFC 4271 6.4 forbids answering it with one.
func lengthFits(hdr *bgp.BGPHeader) bool {
	switch hdr.Type {
	case bgp.BGP_MSG_OPEN:
		return hdr.Len >= headerLen+10
	case bgp.BGP_MSG_UPDATE:
		return hdr.Len >= headerLen+4
	case bgp.BGP_MSG_KEEPALIVE:
		return hdr.Len == headerLen
	}
	return true
}

func connErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.Join(errConnLost, err)
	}
	return err
}

// established runs the Established state until the session ends.
func (s *session) established(ctx context.Context, br *bufio.Reader) (err error) {
	s.setState(StateEstablished)
	s.started = timeNow()
	info := sessionInfo{
		addr: s.cfg.Address, routerID: s.neg.remoteID, asn: s.neg.remoteASN, ebgp: s.ebgp,
		client: s.cfg.Client, fams: s.neg.fams, addPath: s.neg.addPath, extMsg: s.neg.extMsg, llgr: s.neg.llgr.recv, localAddr: s.localAddr(),
		keepNextHop: s.cfg.KeepNextHop, maxPrefixes: s.cfg.MaxPrefixes, stats: s.stats, conn: s, dynamic: s.dynamic,
		mon: s.monInfo(),
	}
	var m *member
	if !s.rib.call(ctx, func(rl *ribLoop) { m = rl.peerUp(info) }) {
		return newNotify(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN, "shutdown")
	}
	// The peer-down path runs however the session ends: an error, the
	// peer closing, or a panic that run's last-resort recover catches.
	defer func() {
		graceful := s.neg.gr && gracefulEnd(s, err)
		r := recover()
		if r != nil {
			graceful = false
			defer panic(r)
		}
		// Known before the peer's routes go: a connection from it that
		// comes once they are gone is refused like one during the
		// hold-down that the manager is about to start (peer.start).
		if r != nil || peerFault(s, err) {
			s.faulted.Store(true)
		}
		s.noteEnd(err)
		s.rib.do(context.WithoutCancel(ctx), func(rl *ribLoop) { rl.peerDown(m, graceful) })
	}()
	s.owner.up(ctx, s)
	return s.readLoop(ctx, br, m)
}

// readLoop reads, parses and batches messages for the RIB loop.
func (s *session) readLoop(ctx context.Context, br *bufio.Reader, m *member) error {
	rfs := s.neg.rfMap()
	batch := &ribBatch{}
	n := 0
	for {
		if (n > 0 || len(batch.raw) > 0) && (br.Buffered() < headerLen || n >= maxBatchPrefixes || len(batch.raw) >= maxBatchRaw) {
			b := batch
			if !s.rib.do(ctx, func(rl *ribLoop) { rl.update(m, b) }) {
				return ctx.Err()
			}
			batch, n = &ribBatch{}, 0
		}
		s.resetHold(false)
		hdr, body, err := readMessageMax(br, s.neg.maxMsgLen())
		if err != nil {
			return s.readErr(err)
		}
		if testHookMessage != nil {
			testHookMessage(hdr, body)
		}
		switch hdr.Type {
		case bgp.BGP_MSG_UPDATE:
			s.stats.updatesIn.Add(1)
			if s.rib.mon != nil {
				batch.raw = append(batch.raw, body)
			}
			added, err := s.parseUpdate(hdr, body, rfs, batch)
			if err != nil {
				return err
			}
			n += added
			if n == 0 && batch.eor != 0 {
				n = 1 // an End-of-RIB alone still goes to the RIB
			}
		case bgp.BGP_MSG_KEEPALIVE:
		case bgp.BGP_MSG_NOTIFICATION:
			return parseNotification(body)
		case bgp.BGP_MSG_ROUTE_REFRESH:
			if err := s.routeRefresh(ctx, hdr, body, m); err != nil {
				return err
			}
		default:
			return newNotify(bgp.BGP_ERROR_FSM_ERROR, 0, "unexpected message in Established")
		}
	}
}

// routeRefresh handles a ROUTE-REFRESH (RFC 2918): its length must be 4
// bytes (RFC 7313 5: ROUTE-REFRESH Message Error, Invalid Message Length,
// with the message as data); subtypes other than a plain request (we do
// not negotiate enhanced route refresh) and families the session does
// not carry are ignored.
func (s *session) routeRefresh(ctx context.Context, hdr *bgp.BGPHeader, body []byte, m *member) error {
	if len(body) != 4 {
		e := newNotify(bgp.BGP_ERROR_ROUTE_REFRESH_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_INVALID_MESSAGE_LENGTH, "ROUTE-REFRESH of a bad length")
		e.data = appendHeader(nil, bgp.BGP_MSG_ROUTE_REFRESH)
		binary.BigEndian.PutUint16(e.data[16:], hdr.Len)
		e.data = append(e.data, body...)
		return e
	}
	if body[2] != 0 {
		return nil
	}
	f, ok := familyOf(bgp.AfiSafiToRouteFamily(binary.BigEndian.Uint16(body), body[3]))
	if !ok || !s.neg.fams.has(f) {
		return nil
	}
	if !s.q.requestRefresh(f) {
		s.rib.met.refreshCoalesced.Inc()
		return nil
	}
	s.rib.do(ctx, func(rl *ribLoop) { rl.refresh(m, f) })
	return nil
}

// refresh answers a ROUTE-REFRESH with the table (RFC 2918).
func (rl *ribLoop) refresh(m *member, f family) {
	if m.rp.member == m {
		rl.flush()
		rl.dump(m, f, true)
	}
}

func addrFromIP(ip []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	return a.Unmap()
}

// testHookMessage, when set by a test, sees every message an established
// session reads (it may panic, to test the session's last resort).
var testHookMessage func(hdr *bgp.BGPHeader, body []byte)

// timeNow is time.Now; sessions record their start with it.
var timeNow = time.Now
