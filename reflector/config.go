package reflector

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
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
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
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
}

// NoHoldTime proposes a hold time of zero: no keepalives, no hold timer.
const NoHoldTime time.Duration = -1

// DynamicNeighbor accepts passive sessions from any address in Prefix.
type DynamicNeighbor struct {
	Prefix          netip.Prefix
	ASN             uint32
	Client          bool
	HoldTime        time.Duration
	MaxPrefixes     int
	AddPath         bool
	GracefulRestart bool
}

const (
	defaultHoldTime          = 90 * time.Second
	defaultConnectRetry      = 5 * time.Second
	defaultSelectionDeferral = 60 * time.Second
	grRestartTime            = 120 // seconds we advertise
	staleRoutesTime          = 360 * time.Second
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
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	ns, err := normalizeNeighbors(c.Neighbors)
	if err != nil {
		errs = append(errs, err)
	}
	c.Neighbors = ns
	for i, d := range c.DynamicNeighbors {
		if !d.Prefix.IsValid() {
			errs = append(errs, fmt.Errorf("DynamicNeighbors[%d].Prefix: invalid", i))
		}
		if d.ASN == 0 {
			errs = append(errs, fmt.Errorf("DynamicNeighbors[%d].ASN: must not be zero", i))
		}
		c.DynamicNeighbors[i].Prefix = d.Prefix.Masked()
	}
	return c, errors.Join(errs...)
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
				HoldTime: d.HoldTime, MaxPrefixes: d.MaxPrefixes,
				AddPath: d.AddPath, GracefulRestart: d.GracefulRestart,
			}.withDefaults(), true
		}
	}
	return NeighborConfig{}, false
}
