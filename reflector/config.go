package reflector

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// Config is the reflector's configuration.
type Config struct {
	// RouterID is the BGP identifier (an IPv4 address).
	RouterID netip.Addr
	// ASN is the local autonomous system number.
	ASN uint32
	// ClusterID is the RFC 4456 cluster identifier; zero means RouterID.
	ClusterID netip.Addr
	// ListenAddrs are "host:port" addresses to accept sessions on; empty
	// means the reflector only dials its active neighbours.
	ListenAddrs []string
	// Neighbors are the configured neighbours.
	Neighbors []NeighborConfig
	// DynamicNeighbors accept sessions from any address inside a prefix.
	DynamicNeighbors []DynamicNeighbor
	// Policy is the route policy (policy.go): BGPFilters, the filters of
	// each neighbour and range, and the eBGP default (the zero value is
	// RFC 8212: eBGP neighbours exchange nothing). Reflector.SetPolicy
	// changes it live.
	Policy PolicyConfig
	// ConnectRetry is the delay between connection attempts to an active
	// neighbour, jittered down by up to a quarter (RFC 4271 10); zero means
	// 5 s.
	ConnectRetry time.Duration
	// Restarting starts the reflector as an RFC 4724 restarting speaker:
	// its OPENs carry the Restart State bit and it advertises nothing
	// until every configured graceful-restart neighbour has sent
	// End-of-RIB, or SelectionDeferral has passed (see restart.go).
	Restarting bool
	// SelectionDeferral bounds that wait; zero means 60 s.
	SelectionDeferral time.Duration
	// ProgramFIB installs the best paths into the kernel's routing table
	// (see fib.go and FIBConfig). Off by default: a reflector only
	// reflects, and without it nothing touches the kernel.
	ProgramFIB bool
	// FIB configures the kernel routes when ProgramFIB is set.
	FIB FIBConfig
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// BFD creates the reflector's BFD server when the first neighbour
	// that enables BFD is configured (bfd.go); the reflector owns and
	// closes it. Nil: neighbours that ask for BFD run without (logged).
	BFD func() (BFDServer, error)
	// BMP exports sessions and received routes to BMP collectors (bmp.go).
	BMP BMPConfig
	// MRT configures periodic RIB snapshots and the update log (mrt.go).
	MRT MRTConfig

	// idleHold is the first hold-down of a neighbour after a session that
	// ended by its fault; zero means defaultIdleHold. Tests shorten it.
	idleHold time.Duration
	// outQueueLimit is each session's output queue limit (writer.go);
	// zero means defaultOutQueueLimit. Tests lower it.
	outQueueLimit int
}

// NeighborConfig is one configured neighbour.
type NeighborConfig struct {
	Address netip.Addr
	// Port is the neighbour's port for active connects; zero means 179.
	Port uint16
	// LocalAddress, when valid, is the source address for active connects.
	LocalAddress netip.Addr
	ASN          uint32
	// Client marks an RFC 4456 route-reflector client (iBGP only).
	Client bool
	// Passive neighbours are never dialled.
	Passive bool
	// HoldTime is the proposed hold time; zero means 90 s. Use NoHoldTime
	// to propose none.
	HoldTime time.Duration
	// KeepaliveTime is the keepalive interval; zero means a third of the
	// negotiated hold time.
	KeepaliveTime time.Duration
	// MaxPrefixes closes the session (Cease, subcode 1) when the neighbour
	// sends more prefixes; zero means no limit.
	MaxPrefixes int
	// Password enables TCP MD5 signatures (RFC 2385).
	Password string
	// AddPath advertises add-path send for IPv4 and IPv6 unicast.
	AddPath bool
	// GracefulRestart advertises RFC 4724 graceful restart; as a helper the
	// reflector keeps a restarting neighbour's routes as stale.
	GracefulRestart bool
	// RestartTime is the restart time we advertise with graceful restart
	// (whole seconds, at most 4095 s); zero means 120 s.
	RestartTime time.Duration
	// LongLivedStaleTime enables RFC 9494 long-lived graceful restart
	// (llgr.go) with graceful restart: advertised to the neighbour, and
	// the longest we keep its routes as LLGR-stale (whole seconds, at
	// most 16777215 s). Zero is off.
	LongLivedStaleTime time.Duration
	// TTLSecurity enables GTSM (RFC 5082): the neighbour is at most this
	// many hops away; we send with TTL 255 and drop what arrives with a
	// TTL below 256 minus it. Zero is off. Not with EBGPMultihop.
	TTLSecurity uint8
	// EBGPMultihop is the TTL of an eBGP session's packets; zero means 1
	// (a directly connected neighbour, as BIRD and FRR default to). iBGP
	// sessions keep the kernel's default TTL and ignore it.
	EBGPMultihop uint8
	// KeepNextHop leaves NEXT_HOP unchanged on routes sent to an eBGP
	// neighbour instead of setting it to our address (next-hop-self).
	// iBGP never changes next hops, so it only matters for eBGP.
	KeepNextHop bool
	// BFD runs a BFD session beside the BGP session (bfd.go).
	BFD BFDConfig
	// Families are the address families offered to the neighbour
	// (ParseFamilies); zero means IPv4 and IPv6 unicast. A family not in
	// it is not negotiated.
	Families FamilySet
	// Description is free text shown with the neighbour's status; it
	// changes live (no session reset).
	Description string
}

// NoHoldTime proposes a hold time of zero: no keepalives, no hold timer.
const NoHoldTime time.Duration = -1

// DynamicNeighbor accepts passive sessions from any address in Prefix.
// When ranges overlap, the most specific one that contains an address
// applies (the first of equal ones); a configured neighbour always wins
// over a range.
type DynamicNeighbor struct {
	Prefix          netip.Prefix
	ASN             uint32
	Client          bool
	HoldTime        time.Duration
	KeepaliveTime   time.Duration
	MaxPrefixes     int
	AddPath         bool
	GracefulRestart bool
	// RestartTime and LongLivedStaleTime are as in NeighborConfig.
	RestartTime        time.Duration
	LongLivedStaleTime time.Duration
	// Password is a TCP MD5 key for the whole range (a prefix key,
	// TCP_MD5SIG_EXT).
	Password     string
	TTLSecurity  uint8
	EBGPMultihop uint8
	KeepNextHop  bool
	Families     FamilySet
}

const (
	defaultHoldTime          = 90 * time.Second
	defaultConnectRetry      = 5 * time.Second
	defaultSelectionDeferral = 60 * time.Second
	grRestartTime            = 120 // seconds we advertise
	staleRoutesTime          = 360 * time.Second
	defaultIdleHold          = 30 * time.Second
	asTrans                  = 23456
)

// validate checks the configuration and fills in defaults.
func (c Config) validate() (Config, error) {
	var errs []error
	if !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		errs = append(errs, fmt.Errorf("RouterID: %v is not a non-zero IPv4 address", c.RouterID))
	}
	if c.ASN == 0 {
		errs = append(errs, errors.New("ASN: must not be zero"))
	}
	if !c.ClusterID.IsValid() {
		c.ClusterID = c.RouterID
	} else if !c.ClusterID.Is4() {
		errs = append(errs, fmt.Errorf("ClusterID: %v is not an IPv4 address", c.ClusterID))
	}
	if c.ConnectRetry <= 0 {
		c.ConnectRetry = defaultConnectRetry
	}
	if c.SelectionDeferral <= 0 {
		c.SelectionDeferral = defaultSelectionDeferral
	}
	if c.outQueueLimit <= 0 {
		c.outQueueLimit = defaultOutQueueLimit
	}
	if c.idleHold <= 0 {
		c.idleHold = defaultIdleHold
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	ns, err := normalizeNeighbors(c.Neighbors)
	if err != nil {
		errs = append(errs, err)
	}
	c.Neighbors = ns
	ds, err := normalizeDynamic(c.DynamicNeighbors)
	if err != nil {
		errs = append(errs, err)
	}
	c.DynamicNeighbors = ds
	if c.BMP, err = c.BMP.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MRT, err = c.MRT.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.ProgramFIB {
		fib, err := c.FIB.withDefaults()
		if err != nil {
			errs = append(errs, err)
		}
		c.FIB = fib
	}
	return c, errors.Join(errs...)
}

// normalizeDynamic validates dynamic neighbours and orders them most
// specific first (stable: equal prefixes keep their order), which is the
// order dynamicFor matches them in.
func normalizeDynamic(in []DynamicNeighbor) ([]DynamicNeighbor, error) {
	var errs []error
	out := make([]DynamicNeighbor, 0, len(in))
	for i, d := range in {
		switch {
		case !d.Prefix.IsValid():
			errs = append(errs, fmt.Errorf("DynamicNeighbors[%d].Prefix: invalid", i))
			continue
		case d.ASN == 0:
			errs = append(errs, fmt.Errorf("DynamicNeighbors[%d] (%v).ASN: must not be zero", i, d.Prefix))
			continue
		case len(d.Password) > 80:
			errs = append(errs, fmt.Errorf("DynamicNeighbors[%d] (%v).Password: longer than 80 bytes", i, d.Prefix))
			continue
		case d.TTLSecurity != 0 && d.EBGPMultihop != 0:
			errs = append(errs, fmt.Errorf("DynamicNeighbors[%d] (%v).EBGPMultihop: not with TTLSecurity", i, d.Prefix))
			continue
		}
		if err := checkRestartTimes(d.GracefulRestart, d.RestartTime, d.LongLivedStaleTime); err != nil {
			errs = append(errs, fmt.Errorf("DynamicNeighbors[%d] (%v).%w", i, d.Prefix, err))
			continue
		}
		d.Prefix = d.Prefix.Masked()
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b DynamicNeighbor) int { return b.Prefix.Bits() - a.Prefix.Bits() })
	return out, errors.Join(errs...)
}

// normalizeNeighbors validates neighbours and fills in their defaults.
func normalizeNeighbors(in []NeighborConfig) ([]NeighborConfig, error) {
	var errs []error
	out := make([]NeighborConfig, 0, len(in))
	seen := map[netip.Addr]bool{}
	for i, n := range in {
		n.Address = n.Address.Unmap()
		switch {
		case !n.Address.IsValid():
			errs = append(errs, fmt.Errorf("Neighbors[%d].Address: invalid", i))
			continue
		case seen[n.Address]:
			errs = append(errs, fmt.Errorf("Neighbors[%d].Address: %v is configured twice", i, n.Address))
			continue
		case n.ASN == 0:
			errs = append(errs, fmt.Errorf("Neighbors[%d] (%v).ASN: must not be zero", i, n.Address))
			continue
		case len(n.Password) > 80:
			errs = append(errs, fmt.Errorf("Neighbors[%d] (%v).Password: longer than 80 bytes", i, n.Address))
			continue
		case n.TTLSecurity != 0 && n.EBGPMultihop != 0:
			errs = append(errs, fmt.Errorf("Neighbors[%d] (%v).EBGPMultihop: not with TTLSecurity", i, n.Address))
			continue
		}
		if err := checkRestartTimes(n.GracefulRestart, n.RestartTime, n.LongLivedStaleTime); err != nil {
			errs = append(errs, fmt.Errorf("Neighbors[%d] (%v).%w", i, n.Address, err))
			continue
		}
		if err := n.BFD.validate(n); err != nil {
			errs = append(errs, fmt.Errorf("Neighbors[%d] (%v).BFD: %w", i, n.Address, err))
			continue
		}
		seen[n.Address] = true
		out = append(out, n.withDefaults())
	}
	return out, errors.Join(errs...)
}

func (n NeighborConfig) withDefaults() NeighborConfig {
	if n.Port == 0 {
		n.Port = 179
	}
	if n.HoldTime == 0 {
		n.HoldTime = defaultHoldTime
	}
	if n.HoldTime < 0 {
		n.HoldTime = 0
	}
	if n.HoldTime > 0 && n.HoldTime < 3*time.Second {
		n.HoldTime = 3 * time.Second
	}
	return n
}

// dynamicFor returns the neighbour configuration for a remote address that
// falls inside a dynamic-neighbour range.
func (c *Config) dynamicFor(addr netip.Addr) (NeighborConfig, bool) {
	for _, d := range c.DynamicNeighbors {
		if d.Prefix.Contains(addr) {
			return NeighborConfig{
				Address: addr, ASN: d.ASN, Client: d.Client, Passive: true,
				HoldTime: d.HoldTime, KeepaliveTime: d.KeepaliveTime, MaxPrefixes: d.MaxPrefixes,
				AddPath: d.AddPath, GracefulRestart: d.GracefulRestart, Password: d.Password,
				TTLSecurity: d.TTLSecurity, EBGPMultihop: d.EBGPMultihop, KeepNextHop: d.KeepNextHop,
				Families:    d.Families,
				RestartTime: d.RestartTime, LongLivedStaleTime: d.LongLivedStaleTime,
			}.withDefaults(), true
		}
	}
	return NeighborConfig{}, false
}
