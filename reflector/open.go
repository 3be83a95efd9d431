package reflector

import (
	"encoding/binary"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// negotiated is the outcome of the OPEN exchange.
type negotiated struct {
	remoteID   uint32
	remoteASN  uint32
	fams       families
	addPath    families // we send path identifiers
	hold       time.Duration
	keepalive  time.Duration
	gr         bool   // both sides advertised graceful restart
	grTime     uint16 // the peer's restart time, seconds
	llgr       llgrNeg
	refreshCap bool
	extMsg     bool // RFC 8654: both sides advertised extended messages
}

// capExtendedMessage is the RFC 8654 capability code.
const capExtendedMessage bgp.BGPCapabilityCode = 6

// buildOpen encodes our OPEN with its capabilities.
func (s *session) buildOpen() []byte {
	fams := s.cfg.families()
	var caps []bgp.ParameterCapabilityInterface
	for f := range numFamilies {
		if fams.has(f) {
			caps = append(caps, bgp.NewCapMultiProtocol(f.routeFamily()))
		}
	}
	caps = append(caps, bgp.NewCapRouteRefresh(), bgp.NewCapFourOctetASNumber(s.local.asn),
		bgp.NewCapUnknown(capExtendedMessage, nil))
	if s.cfg.GracefulRestart {
		// A reflector forwards nothing, so across a restart it always
		// "preserves" all the forwarding state it has: the F bits are set,
		// or helpers (GoBGP, RFC 4724 4.2) drop our routes when we go.
		restarting := s.rib.restarting.Load()
		var tuples []*bgp.CapGracefulRestartTuple
		for f := range numFamilies {
			if fams.has(f) {
				tuples = append(tuples, bgp.NewCapGracefulRestartTuple(f.routeFamily(), true))
			}
		}
		caps = append(caps, bgp.NewCapGracefulRestart(restarting, false, s.cfg.restartTime(), tuples))
		if c := s.llgrCap(); c != nil {
			caps = append(caps, c)
		}
	}
	if s.cfg.AddPath {
		var tuples []*bgp.CapAddPathTuple
		for f := range numFamilies {
			if fams.has(f) {
				tuples = append(tuples, bgp.NewCapAddPathTuple(f.routeFamily(), bgp.BGP_ADD_PATH_SEND))
			}
		}
		caps = append(caps, bgp.NewCapAddPath(tuples))
	}
	myAS := uint16(asTrans)
	if s.local.asn <= 0xffff {
		myAS = uint16(s.local.asn)
	}
	open := bgp.NewBGPOpenMessage(myAS, uint16(s.cfg.HoldTime/time.Second), uintToAddr(s.local.routerID).String(),
		[]bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	b, err := open.Serialize()
	if err != nil {
		panic("reflector: encoding our OPEN: " + err.Error()) // programmer error
	}
	return b
}

// negotiate validates the peer's OPEN and computes the session parameters.
func (s *session) negotiate(open *bgp.BGPOpen) (negotiated, error) {
	var n negotiated
	asn, err := bgp.ValidateOpenMsg(open, s.cfg.ASN, s.local.asn, uintToAddr(s.local.routerID).AsSlice())
	if err != nil {
		return n, notifyFromMessageError(err, bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, 0)
	}
	n.remoteASN, n.remoteID = asn, ip4ToUint(open.ID)
	var four, mp bool
	var peerFams families
	addPathRecv := families(0)
	for _, p := range open.OptParams {
		pc, ok := p.(*bgp.OptionParameterCapability)
		if !ok {
			continue
		}
		for _, c := range pc.Capability {
			switch c := c.(type) {
			case *bgp.CapFourOctetASNumber:
				four = true
			case *bgp.CapMultiProtocol:
				mp = true
				if f, ok := familyOf(c.CapValue); ok {
					peerFams = peerFams.with(f)
				}
			case *bgp.CapRouteRefresh:
				n.refreshCap = true
			case *bgp.CapUnknown:
				n.extMsg = n.extMsg || c.CapCode == capExtendedMessage
			case *bgp.CapGracefulRestart:
				n.gr, n.grTime = s.cfg.GracefulRestart, c.Time
			case *bgp.CapLongLivedGracefulRestart:
				n.llgr = s.parseLLGR(c)
			case *bgp.CapAddPath:
				for _, t := range c.Tuples {
					if f, ok := familyOf(t.RouteFamily); ok && t.Mode&bgp.BGP_ADD_PATH_RECEIVE != 0 {
						addPathRecv = addPathRecv.with(f)
					}
				}
			}
		}
	}
	if !four {
		e := newNotify(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_UNSUPPORTED_CAPABILITY,
			"the 4-octet AS number capability is required")
		e.data = binary.BigEndian.AppendUint32([]byte{byte(bgp.BGP_CAP_FOUR_OCTET_AS_NUMBER), 4}, s.local.asn)
		return n, e
	}
	if !mp {
		peerFams = peerFams.with(famV4)
	}
	n.fams = peerFams & s.cfg.families()
	if n.fams == 0 {
		return n, newNotify(bgp.BGP_ERROR_OPEN_MESSAGE_ERROR, bgp.BGP_ERROR_SUB_UNSUPPORTED_CAPABILITY,
			"no common address family")
	}
	if s.cfg.AddPath {
		n.addPath = addPathRecv & n.fams
	}
	if n.gr {
		n.llgr = n.llgr.restrict(n.fams)
	} else {
		n.llgr = llgrNeg{} // RFC 9494 4.1: not without graceful restart
	}
	n.hold = min(s.cfg.HoldTime, time.Duration(open.HoldTime)*time.Second)
	if n.hold > 0 {
		n.keepalive = n.hold / 3
		if s.cfg.KeepaliveTime > 0 {
			n.keepalive = min(s.cfg.KeepaliveTime, n.keepalive)
		}
	}
	return n, nil
}

// maxMsgLen is the longest message the session accepts and sends.
func (n *negotiated) maxMsgLen() int {
	if n.extMsg {
		return maxExtMsgLen
	}
	return maxMsgLen
}

// rfMap is the codec's view of the negotiated families: we never receive
// path identifiers.
func (n *negotiated) rfMap() map[bgp.RouteFamily]bgp.BGPAddPathMode {
	m := map[bgp.RouteFamily]bgp.BGPAddPathMode{}
	for f := range numFamilies {
		if n.fams.has(f) {
			m[f.routeFamily()] = bgp.BGP_ADD_PATH_NONE
		}
	}
	return m
}
