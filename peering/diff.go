package peering

import (
	"net/netip"
	"slices"
	"time"
)

// Delta is what turns one set of sessions into another.
type Delta struct {
	// Add and Remove are sessions whose peer address is only in the
	// desired, or only in the running set.
	Add, Remove []Session
	// Update are sessions whose address is in both but whose settings
	// differ.
	Update []Update
}

// Update is one session whose settings changed.
type Update struct {
	Old, New Session
	// Reset says that the change only takes effect when the session is
	// restarted (it is negotiated in OPEN or set on the socket); otherwise
	// it can be applied to the running session.
	Reset bool
	// Changed are the names of the Session fields that differ, in field
	// order.
	Changed []string
}

// Empty reports whether there is nothing to do.
func (d Delta) Empty() bool { return len(d.Add) == 0 && len(d.Remove) == 0 && len(d.Update) == 0 }

// Diff compares the running sessions with the desired ones. Sessions are
// keyed by peer address alone, because a speaker (and TCP MD5) holds one
// session per neighbour address; so a changed port is an Update that
// resets, not a removal and an addition. If a list has two sessions with
// one address, the last counts. Each list in the Delta is sorted by peer
// address.
func Diff(running, desired []Session) Delta {
	var d Delta
	byAddr := func(a, b Session) int { return a.PeerAddress.Compare(b.PeerAddress) }
	d.Add, d.Remove = diffKeyed(running, desired, func(s Session) netip.Addr { return s.PeerAddress }, byAddr,
		func(o, s Session) {
			changed, reset := changes(o, s)
			d.Update = append(d.Update, Update{Old: o, New: s, Reset: reset, Changed: changed})
		})
	slices.SortFunc(d.Update, func(a, b Update) int { return byAddr(a.New, b.New) })
	return d
}

// diffKeyed compares running and desired items by key (if a list has two
// items with one key, the last counts): it returns the added and the
// removed ones, sorted by cmp, and calls changed for each key whose item
// differs.
func diffKeyed[T comparable, K comparable](running, desired []T, key func(T) K, cmp func(a, b T) int, changed func(old, new T)) (add, remove []T) {
	old := make(map[K]T, len(running))
	for _, x := range running {
		old[key(x)] = x
	}
	want := make(map[K]T, len(desired))
	for _, x := range desired {
		want[key(x)] = x
	}
	for k, x := range want {
		o, ok := old[k]
		switch {
		case !ok:
			add = append(add, x)
		case o != x:
			changed(o, x)
		}
	}
	for k, x := range old {
		if _, ok := want[k]; !ok {
			remove = append(remove, x)
		}
	}
	slices.SortFunc(add, cmp)
	slices.SortFunc(remove, cmp)
	return add, remove
}

// field is one Session field for Diff: its name, whether a change needs a
// session reset, and whether two sessions differ in it.
type field struct {
	name   string
	reset  bool
	differ func(a, b *Session) bool
}

func differ[T comparable](get func(*Session) T) func(a, b *Session) bool {
	return func(a, b *Session) bool { return get(a) != get(b) }
}

// fields lists every Session field. Live changes:
//   - Type, Source, PeerNode, PeerClusterID only describe the session;
//   - MaxPrefixes is a limit the speaker checks on each UPDATE (lowering
//     it below the count already received is for the speaker to enforce);
//   - KeepOriginalNextHop changes what we send: the speaker re-advertises
//     (a soft reset out), the session stays up.
//
// Everything else is negotiated in OPEN (AS, hold time, graceful restart,
// route-reflector client role affects what is reflected from the start),
// is a property of the TCP connection (addresses, port, password, TTL),
// or decides who connects (Passive), so it resets the session.
var fields = []field{
	{"PeerAddress", true, differ(func(s *Session) netip.Addr { return s.PeerAddress })},
	{"PeerPort", true, differ(func(s *Session) uint16 { return s.PeerPort })},
	{"PeerAS", true, differ(func(s *Session) uint32 { return s.PeerAS })},
	{"LocalAS", true, differ(func(s *Session) uint32 { return s.LocalAS })},
	{"EBGP", true, differ(func(s *Session) bool { return s.EBGP })},
	{"LocalAddress", true, differ(func(s *Session) netip.Addr { return s.LocalAddress })},
	{"Type", false, differ(func(s *Session) string { return string(s.Type) })},
	{"Source", false, differ(func(s *Session) string { return s.Source })},
	{"PeerNode", false, differ(func(s *Session) string { return s.PeerNode })},
	{"PeerClusterID", false, differ(func(s *Session) netip.Addr { return s.PeerClusterID })},
	{"RouteReflectorClient", true, differ(func(s *Session) bool { return s.RouteReflectorClient })},
	{"ClusterID", true, differ(func(s *Session) netip.Addr { return s.ClusterID })},
	{"Passive", true, differ(func(s *Session) bool { return s.Passive })},
	{"HoldTime", true, differ(func(s *Session) time.Duration { return s.HoldTime })},
	{"KeepaliveTime", true, differ(func(s *Session) time.Duration { return s.KeepaliveTime })},
	{"GracefulRestart", true, differ(func(s *Session) GracefulRestart { return s.GracefulRestart })},
	{"Password", true, differ(func(s *Session) SecretRef { return s.Password })},
	{"KeepOriginalNextHop", false, differ(func(s *Session) bool { return s.KeepOriginalNextHop })},
	{"NextHopSelf", false, differ(func(s *Session) bool { return s.NextHopSelf })},
	{"MaxPrefixes", false, differ(func(s *Session) uint32 { return s.MaxPrefixes })},
	{"TTLSecurity", true, differ(func(s *Session) uint8 { return s.TTLSecurity })},
	{"EBGPMultihop", true, differ(func(s *Session) uint8 { return s.EBGPMultihop })},
	// BFD runs beside the BGP session: the router changes it live.
	{"BFD", false, differ(func(s *Session) BFD { return s.BFD })},
	// Families are negotiated in OPEN.
	{"Families", true, differ(func(s *Session) string { return s.Families })},
}

// changes lists the fields in which a and b differ, and whether any of
// them needs a reset.
func changes(a, b Session) (names []string, reset bool) {
	for _, f := range fields {
		if f.differ(&a, &b) {
			names = append(names, f.name)
			reset = reset || f.reset
		}
	}
	return names, reset
}
