package topology

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// NetnsPrefix starts the name of every namespace of every run. A run's
// namespaces are NetnsPrefix + run ID, then "-" + node name for nodes, or
// "." + kind + "." + name for the others (node names never contain dots, so
// the two never clash).
const NetnsPrefix = "bf-"

// MaxSlot is the highest address slot: runs use slots 0..MaxSlot so that up
// to MaxSlot+1 runs coexist with distinct address ranges.
const MaxSlot = 63

var runIDRE = regexp.MustCompile(`^[0-9a-f]{6}$`)

// ValidRunID reports whether id is a run ID: six lower-case hex digits.
func ValidRunID(id string) bool { return runIDRE.MatchString(id) }

// RunPrefix is the prefix of every namespace of run id.
func RunPrefix(id string) string { return NetnsPrefix + id }

// RunOfNetns returns the run ID a namespace name belongs to, if it is one
// of ours.
func RunOfNetns(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, NetnsPrefix)
	if !ok || len(rest) < 7 {
		return "", false
	}
	id, sep := rest[:6], rest[6]
	if !ValidRunID(id) || (sep != '-' && sep != '.') {
		return "", false
	}
	return id, true
}

// NodeNetns, SegmentNetns, WorkloadNetns and DatastoreNetns name a run's
// namespaces.
func NodeNetns(run, node string) string   { return RunPrefix(run) + "-" + node }
func SegmentNetns(run, seg string) string { return RunPrefix(run) + ".seg." + seg }
func WorkloadNetns(run, wl string) string { return RunPrefix(run) + ".wl." + wl }
func DatastoreNetns(run string) string    { return RunPrefix(run) + ".etcd" }
func bridgePortName(i int) string         { return fmt.Sprintf("p%d", i) }
func ifaceName(i int) string              { return fmt.Sprintf("eth%d", i) }
func slotV4(base byte, slot int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, base + byte(slot), 0, 0})
}

// DefaultManagementV4 is the management range of a slot: 10.(64+slot).0.0/16.
func DefaultManagementV4(slot int) netip.Prefix { return netip.PrefixFrom(slotV4(64, slot), 16) }

// DefaultPoolV4 is the workload pool of a slot: 10.(128+slot).0.0/16.
func DefaultPoolV4(slot int) netip.Prefix { return netip.PrefixFrom(slotV4(128, slot), 16) }

// DefaultManagementV6 is fd00:bf:<slot>::/48.
func DefaultManagementV6(slot int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("fd00:bf:%x::/48", slot))
}

// DefaultPoolV6 is fd00:bf:<slot>:fe00::/112, inside the management /48
// but apart from every segment and link subnet.
func DefaultPoolV6(slot int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("fd00:bf:%x:fe00::/112", slot))
}
