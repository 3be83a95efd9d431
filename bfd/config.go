package bfd

import (
	"fmt"
	"net/netip"
	"time"
)

// Defaults of a session's Config.
const (
	DefaultMinTx      = 300 * time.Millisecond
	DefaultMinRx      = 300 * time.Millisecond
	DefaultMultiplier = 3
	// DefaultMultihopMinTTL is the lowest TTL accepted on a multihop
	// session unless Config.MinTTL says otherwise: 254, one routed hop
	// (the default of FRR's bfdd). RFC 5883 §2 leaves the check to the
	// implementation.
	DefaultMultihopMinTTL = 254
	// slowTx is the least transmit interval while a session is not Up
	// (RFC 5880 §6.8.3).
	slowTx = time.Second
	// Bounds of configured intervals: below 10 ms a Go timer on a loaded
	// host cannot keep the promise; above 60 s is no failure detector.
	minInterval = 10 * time.Millisecond
	maxInterval = 60 * time.Second
)

// Config is one session's configuration.
type Config struct {
	// Peer is the remote system's address (required).
	Peer netip.Addr
	// Local is the source address of our packets, and the only
	// destination address accepted from the peer. Required for multihop;
	// for single hop the kernel picks the source when it is unset.
	Local netip.Addr
	// Interface pins a single-hop session to one interface: packets go out
	// of it and are accepted only from it. Required for IPv6 link-local
	// peers.
	Interface string
	// MinTx is bfd.DesiredMinTxInterval once the session is Up (while not
	// Up it is at least 1 s). MinRx is bfd.RequiredMinRxInterval. Zero
	// means DefaultMinTx and DefaultMinRx.
	MinTx, MinRx time.Duration
	// Multiplier is bfd.DetectMult; zero means DefaultMultiplier.
	Multiplier uint8
	// Multihop selects RFC 5883 (UDP port 4784, TTL check relaxed to
	// MinTTL) instead of RFC 5881 single hop (port 3784, TTL 255 only).
	Multihop bool
	// MinTTL is the lowest TTL (hop limit) accepted on a multihop session;
	// zero means DefaultMultihopMinTTL. It must be zero for single hop.
	MinTTL uint8
}

// Key identifies a session: two sessions with equal keys cannot coexist.
type Key struct {
	Peer      netip.Addr
	Local     netip.Addr
	Interface string
	Multihop  bool
}

// Key returns the session key of c.
func (c Config) Key() Key {
	return Key{Peer: c.Peer.Unmap(), Local: c.Local.Unmap(), Interface: c.Interface, Multihop: c.Multihop}
}

func (k Key) String() string {
	s := k.Peer.String()
	if k.Local.IsValid() {
		s += " from " + k.Local.String()
	}
	if k.Interface != "" {
		s += " on " + k.Interface
	}
	if k.Multihop {
		s += " multihop"
	}
	return s
}

// normalize fills defaults and validates c; errors name the field.
func (c Config) normalize() (Config, error) {
	c.Peer, c.Local = c.Peer.Unmap(), c.Local.Unmap()
	if !c.Peer.IsValid() || c.Peer.IsUnspecified() || c.Peer.IsMulticast() {
		return c, fmt.Errorf("bfd config: peer: %q is not a unicast address", c.Peer)
	}
	if c.Peer.Zone() != "" || c.Local.Zone() != "" {
		return c, fmt.Errorf("bfd config: peer: %s: give the interface in interface, not as a zone", c.Peer)
	}
	if c.Local.IsValid() && (c.Local.Is4() != c.Peer.Is4()) {
		return c, fmt.Errorf("bfd config: local: %s is not of the family of peer %s", c.Local, c.Peer)
	}
	if c.Multihop {
		if !c.Local.IsValid() {
			return c, fmt.Errorf("bfd config: local: required for multihop session to %s", c.Peer)
		}
		if c.Interface != "" {
			return c, fmt.Errorf("bfd config: interface: not allowed for multihop session to %s", c.Peer)
		}
		if c.MinTTL == 0 {
			c.MinTTL = DefaultMultihopMinTTL
		}
	} else {
		if c.MinTTL != 0 {
			return c, fmt.Errorf("bfd config: minTTL: single-hop sessions accept TTL 255 only (RFC 5881 §5)")
		}
		if c.Peer.Is6() && c.Peer.IsLinkLocalUnicast() && c.Interface == "" {
			return c, fmt.Errorf("bfd config: interface: required for link-local peer %s", c.Peer)
		}
	}
	if c.MinTx == 0 {
		c.MinTx = DefaultMinTx
	}
	if c.MinRx == 0 {
		c.MinRx = DefaultMinRx
	}
	if c.Multiplier == 0 {
		c.Multiplier = DefaultMultiplier
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"minTx", c.MinTx}, {"minRx", c.MinRx}} {
		if f.d < minInterval || f.d > maxInterval {
			return c, fmt.Errorf("bfd config: %s: %v is outside [%v, %v]", f.name, f.d, minInterval, maxInterval)
		}
	}
	return c, nil
}
