package routetable

import (
	"fmt"
	"log/slog"
)

// Config configures a RouteTable. The zero value manages felix's routes in
// the main table.
type Config struct {
	// Protocol marks the routes this RouteTable owns; 0 means ProtoFelix.
	// The kernel's own numbers (1 redirect, 2 kernel, 3 boot, 4 static)
	// are refused: owning them would delete routes an operator or the
	// kernel made.
	Protocol uint8
	// Table is the routing table; 0 means TableMain. The local table (255)
	// is refused.
	Table uint32
	// Overrides are the protocols whose routes this table replaces where
	// they hold a prefix it wants, instead of reporting a conflict: felix
	// overrides the BGP router's learned routes (ProtoRouter), so that a
	// node's own workloads and blocks always win over what peers say.
	// The kernel's own numbers (1-4) cannot be overridden.
	Overrides []uint8
	// Logger receives debug logs of each Apply; nil discards them.
	Logger *slog.Logger
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.Protocol == 0 {
		c.Protocol = ProtoFelix
	}
	if c.Protocol <= 4 {
		return c, fmt.Errorf("routetable config: protocol %d is the kernel's or an operator's (want 5-255)", c.Protocol)
	}
	for _, p := range c.Overrides {
		if p <= 4 || p == c.Protocol {
			return c, fmt.Errorf("routetable config: protocol %d cannot be overridden", p)
		}
	}
	if c.Table == 0 {
		c.Table = TableMain
	}
	if c.Table == 255 {
		return c, fmt.Errorf("routetable config: table 255 is the kernel's local table")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Log keys, defined once.
const (
	logKeyTable     = "table"
	logKeyDst       = "dst"
	logKeyProtocol  = "protocol"
	logKeyIface     = "iface"
	logKeyAdded     = "added"
	logKeyReplaced  = "replaced"
	logKeyDeleted   = "deleted"
	logKeyFailed    = "failed"
	logKeyConflicts = "conflicts"
	logKeyRoutes    = "routes"
	logKeyDuration  = "duration"
	logKeyError     = "error"
)
