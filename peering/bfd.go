package peering

import (
	"fmt"
	"strings"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// BFD is a session's BFD (RFC 5880) settings, resolved: BGPConfiguration's
// bfd with the BGPPeer's on top and the defaults filled in. The zero
// value is off; a session with BFD off always carries the zero value, so
// that Sessions stay comparable with ==.
type BFD struct {
	Enabled      bool
	MinTx, MinRx time.Duration
	Multiplier   uint8
	// Multihop selects RFC 5883 instead of single hop (RFC 5881).
	Multihop bool
	// RequireUp keeps the BGP session down while BFD is not Up.
	RequireUp bool
}

// defaultBFD is the base that BGPConfiguration's bfd applies to.
func defaultBFD() BFD {
	return BFD{MinTx: api.DefaultBFDInterval, MinRx: api.DefaultBFDInterval, Multiplier: api.DefaultBFDMultiplier}
}

// resolveBFD applies a validated override field by field.
func resolveBFD(base BFD, o *api.BFD) BFD {
	if o == nil {
		return base
	}
	if o.Enabled != nil {
		base.Enabled = *o.Enabled
	}
	if o.MinTx != "" {
		base.MinTx = o.MinTx.Get()
	}
	if o.MinRx != "" {
		base.MinRx = o.MinRx.Get()
	}
	if o.Multiplier != nil {
		base.Multiplier = uint8(*o.Multiplier)
	}
	if o.Multihop != nil {
		base.Multihop = *o.Multihop
	}
	if o.RequireUp != nil {
		base.RequireUp = *o.RequireUp
	}
	return base
}

// effective is b as a session carries it: the zero value when off.
func (b BFD) effective() BFD {
	if !b.Enabled {
		return BFD{}
	}
	return b
}

// String renders the settings, e.g. "bfd 300ms/300ms x3 multihop
// require-up", or "" when off.
func (b BFD) String() string {
	if !b.Enabled {
		return ""
	}
	var s strings.Builder
	fmt.Fprintf(&s, "bfd %v/%v x%d", b.MinTx, b.MinRx, b.Multiplier)
	if b.Multihop {
		s.WriteString(" multihop")
	}
	if b.RequireUp {
		s.WriteString(" require-up")
	}
	return s.String()
}
