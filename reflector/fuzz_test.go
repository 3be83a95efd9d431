package reflector

import (
	"bufio"
	"bytes"
	"log/slog"
	"net/netip"
	"testing"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// FuzzSessionReader feeds arbitrary bytes to the session's reader and
// UPDATE parser (framing, codec, RFC 7606 handling, conversion): it must
// return errors, never panic. The reader's last-resort recover is not in
// this path, so a panic here is a real bug.
func FuzzSessionReader(f *testing.F) {
	f.Add(keepaliveMsg)
	f.Add(appendEndOfRIB(nil, famV6))
	if b, err := ipv4Update("192.0.2.1", pfx("10.0.0.0/24", "10.0.1.0/25")).Serialize(); err == nil {
		f.Add(b)
	}
	rib := newRIBLoop(slog.New(slog.DiscardHandler), testASN, 1, newEngineMetrics())
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &session{
			local: localIdentity{asn: testASN, routerID: 1, clusterID: 1},
			log:   slog.New(slog.DiscardHandler),
			rib:   rib,
			neg:   negotiated{fams: ourFamilies},
		}
		rfs := s.neg.rfMap()
		br := bufio.NewReader(bytes.NewReader(data))
		for {
			hdr, body, err := readMessage(br)
			if err != nil {
				return
			}
			switch hdr.Type {
			case bgp.BGP_MSG_UPDATE:
				var b ribBatch
				if _, err := s.parseUpdate(hdr, body, rfs, &b); err != nil {
					return
				}
				for _, u := range b.updates {
					if u.a != nil {
						e := exporter{asn: testASN, clusterID: 1}
						e.export(&path{src: &ribPeer{routerID: 2}, a: u.a}, roleClient, s.local.asnAddr())
						e.export(&path{src: &ribPeer{routerID: 2}, a: u.a}, roleEBGP, s.local.asnAddr())
					}
				}
			case bgp.BGP_MSG_OPEN:
				if m, err := bgp.ParseBGPBody(hdr, body); err == nil {
					if o, ok := m.Body.(*bgp.BGPOpen); ok {
						s.cfg = NeighborConfig{ASN: testASN, HoldTime: defaultHoldTime, AddPath: true, GracefulRestart: true}
						s.negotiate(o)
					}
				}
			}
		}
	})
}

func (l localIdentity) asnAddr() netip.Addr { return netip.MustParseAddr("192.0.2.254") }
