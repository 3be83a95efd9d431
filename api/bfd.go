package api

import "time"

// BFD configures Bidirectional Forwarding Detection (RFC 5880) on BGP
// sessions: the node runs a BFD session beside each BGP session that has
// it enabled, and a BFD session that goes Down brings the BGP session
// down at once instead of after the hold time (docs/bfd.md).
//
// In the global BGPConfiguration it is the default of every session of
// every node; a BGPPeer's overrides it field by field for that peer's
// sessions. Unset fields take the defaults below.
type BFD struct {
	// Enabled turns BFD on (default false).
	Enabled *bool `json:"enabled,omitempty"`
	// MinTx is the desired transmit interval and MinRx the required
	// receive interval, from 10ms to 60s (default 300ms each).
	MinTx Duration `json:"minTx,omitempty"`
	MinRx Duration `json:"minRx,omitempty"`
	// Multiplier is the detection multiplier, 1 to 255 (default 3): the
	// peer's session goes Down after this many intervals without packets.
	Multiplier *int `json:"multiplier,omitempty"`
	// Multihop uses RFC 5883 (UDP 4784, between addresses that are not on
	// one link) instead of single hop (RFC 5881, UDP 3784, TTL 255 only).
	Multihop *bool `json:"multihop,omitempty"`
	// RequireUp keeps the BGP session from being set up until its BFD
	// session is Up (and takes it down again whenever BFD goes Down),
	// instead of only resetting it when BFD goes from Up to Down.
	RequireUp *bool `json:"requireUp,omitempty"`
}

// Defaults and bounds of BFD.
const (
	DefaultBFDInterval   = 300 * time.Millisecond
	DefaultBFDMultiplier = 3
	MinBFDInterval       = 10 * time.Millisecond
	MaxBFDInterval       = 60 * time.Second
)

// validateBFD checks a BFD block under path (e.g. "spec.bfd").
func validateBFD(fe *fieldErrors, path string, b *BFD) {
	if b == nil {
		return
	}
	for _, f := range []struct {
		name string
		d    Duration
	}{{"minTx", b.MinTx}, {"minRx", b.MinRx}} {
		if f.d == "" {
			continue
		}
		t, err := f.d.Parse()
		switch {
		case err != nil:
			fe.add(path+"."+f.name, string(f.d), "%v", err)
		case t%time.Millisecond != 0:
			fe.add(path+"."+f.name, string(f.d), "must be a whole number of milliseconds")
		case t < MinBFDInterval || t > MaxBFDInterval:
			fe.add(path+"."+f.name, string(f.d), "must be from %v to %v", MinBFDInterval, MaxBFDInterval)
		}
	}
	if m := b.Multiplier; m != nil && (*m < 1 || *m > 255) {
		fe.add(path+".multiplier", *m, "must be from 1 to 255")
	}
}
