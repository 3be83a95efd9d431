package policy

import (
	"log/slog"
	"slices"
)

// Config configures a Calculator.
type Config struct {
	// Node is the name of the node whose endpoints are local.
	Node string
	// FailsafeInbound are open to this node's host endpoints, and
	// FailsafeOutbound from them, ahead of any policy, so that a bad
	// policy cannot cut the node off from SSH, BGP and etcd. nil means the
	// defaults (DefaultFailsafeInbound, DefaultFailsafeOutbound); an empty
	// non-nil slice means none.
	FailsafeInbound, FailsafeOutbound []Failsafe
	// Logger receives warnings; nil discards them. (Resources that cannot
	// be enforced as written are reported by the errors of the On...Update
	// calls, which the caller logs.)
	Logger *slog.Logger
}

// IP protocol numbers used in failsafes.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// DefaultFailsafeInbound: SSH, BGP and etcd (client and peer), by TCP.
func DefaultFailsafeInbound() []Failsafe {
	return []Failsafe{{Protocol: ProtoTCP, Port: 22}, {Protocol: ProtoTCP, Port: 179},
		{Protocol: ProtoTCP, Port: 2379}, {Protocol: ProtoTCP, Port: 2380}}
}

// DefaultFailsafeOutbound: DNS and DHCP by UDP, BGP and etcd by TCP.
func DefaultFailsafeOutbound() []Failsafe {
	return []Failsafe{{Protocol: ProtoUDP, Port: 53}, {Protocol: ProtoUDP, Port: 67},
		{Protocol: ProtoTCP, Port: 179}, {Protocol: ProtoTCP, Port: 2379}, {Protocol: ProtoTCP, Port: 2380}}
}

func (c Config) withDefaults() Config {
	if c.FailsafeInbound == nil {
		c.FailsafeInbound = DefaultFailsafeInbound()
	}
	if c.FailsafeOutbound == nil {
		c.FailsafeOutbound = DefaultFailsafeOutbound()
	}
	c.FailsafeInbound = slices.Clone(c.FailsafeInbound)
	c.FailsafeOutbound = slices.Clone(c.FailsafeOutbound)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Log keys.
const (
	logKeyPolicy   = "policy"
	logKeyEndpoint = "endpoint"
	logKeyError    = "err"
)
