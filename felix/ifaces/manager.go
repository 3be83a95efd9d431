package ifaces

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
)

// Config configures a Manager.
type Config struct {
	// Logger receives debug logs of what is written; nil discards them.
	Logger *slog.Logger
}

// Manager converges the settings of workload interfaces to the desired
// ones, as the interfaces come and go. Set says what an interface needs,
// OnLinkUpdate what exists, and Apply writes what is missing: the settings
// of an interface are written when it appears (or reappears with a new
// index), and again after Resync.
type Manager struct {
	k   Kernel
	log *slog.Logger

	desired map[string]Settings
	// links are the interfaces that exist, by name and by index.
	links     map[string]int
	linkNames map[int]string
	// done is what was written for an interface, on the index it had.
	done  map[string]applied
	dirty map[string]struct{}

	globalsDone bool
}

// applied is what a Manager wrote for one interface.
type applied struct {
	index    int
	settings Settings
}

// NewManager returns a Manager that writes through k. Its first Apply turns
// forwarding on for the namespace.
func NewManager(cfg Config, k Kernel) *Manager {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{
		k:         k,
		log:       log,
		desired:   map[string]Settings{},
		links:     map[string]int{},
		linkNames: map[int]string{},
		done:      map[string]applied{},
		dirty:     map[string]struct{}{},
	}
}

// Set makes s the desired settings of the interface name; nil means it is
// no longer a workload interface (its sysctls stay as they are, which is
// harmless; its proxy neighbour entries are removed).
func (m *Manager) Set(name string, s *Settings) {
	if s == nil {
		if _, ok := m.desired[name]; ok {
			delete(m.desired, name)
			m.dirty[name] = struct{}{}
		}
		return
	}
	n := Settings{IPv4: s.IPv4, IPv6: s.IPv6, ProxyNDP: slices.Clone(s.ProxyNDP)}
	slices.SortFunc(n.ProxyNDP, netip.Addr.Compare)
	n.ProxyNDP = slices.Compact(n.ProxyNDP)
	if old, ok := m.desired[name]; ok && sameSettings(old, n) {
		return
	}
	m.desired[name] = n
	m.dirty[name] = struct{}{}
}

func sameSettings(a, b Settings) bool {
	return a.IPv4 == b.IPv4 && a.IPv6 == b.IPv6 && slices.Equal(a.ProxyNDP, b.ProxyNDP)
}

// OnLinkUpdate records that the interface name with index exists (or, when
// deleted, no longer does).
func (m *Manager) OnLinkUpdate(name string, index int, deleted bool) {
	if deleted {
		if i, ok := m.links[name]; ok && (index == 0 || index == i) {
			delete(m.links, name)
			delete(m.linkNames, i)
			m.markDirty(name)
		}
		return
	}
	if prev, ok := m.linkNames[index]; ok && prev != name { // renamed
		delete(m.links, prev)
		m.markDirty(prev)
	}
	if i, ok := m.links[name]; ok && i == index {
		return
	}
	if i, ok := m.links[name]; ok {
		delete(m.linkNames, i)
	}
	m.links[name] = index
	m.linkNames[index] = name
	m.markDirty(name)
}

// markDirty marks name when the Manager cares about it.
func (m *Manager) markDirty(name string) {
	_, want := m.desired[name]
	_, did := m.done[name]
	if want || did {
		m.dirty[name] = struct{}{}
	}
}

// Resync makes the next Apply write every setting again (the global ones
// too), repairing anything changed behind our back.
func (m *Manager) Resync() {
	m.globalsDone = false
	for name, a := range m.done {
		a.settings.IPv4, a.settings.IPv6 = false, false // forces the sysctls
		m.done[name] = a
		m.dirty[name] = struct{}{}
	}
	for name := range m.desired {
		m.dirty[name] = struct{}{}
	}
}

// Pending returns the desired interfaces that do not exist yet, sorted.
func (m *Manager) Pending() []string {
	var out []string
	for name := range m.desired {
		if _, ok := m.links[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Apply writes what is missing. Interfaces that fail stay marked and are
// tried again by the next Apply; the error names each of them.
func (m *Manager) Apply(ctx context.Context) error {
	var errs []error
	if !m.globalsDone {
		if err := m.k.WriteSysctls(ctx, globalSysctls()); err != nil {
			errs = append(errs, fmt.Errorf("turning forwarding on: %w", err))
		} else {
			m.globalsDone = true
		}
	}
	for name := range m.dirty {
		if err := m.applyIface(ctx, name); err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", name, err))
			continue
		}
		delete(m.dirty, name)
	}
	return errors.Join(errs...)
}

func (m *Manager) applyIface(ctx context.Context, name string) error {
	want, wanted := m.desired[name]
	index, exists := m.links[name]
	did, has := m.done[name]
	if !exists {
		// The kernel dropped its settings and entries with the link.
		delete(m.done, name)
		return nil
	}
	if has && did.index != index {
		has, did = false, applied{} // a new link of the same name
	}
	if !wanted {
		if has {
			for _, a := range did.settings.ProxyNDP {
				if err := m.k.DelProxyNeigh(ctx, index, a); err != nil {
					return err
				}
			}
			delete(m.done, name)
		}
		return nil
	}
	next := applied{index: index, settings: Settings{ProxyNDP: did.settings.ProxyNDP}}
	if !has || did.settings.IPv4 != want.IPv4 || did.settings.IPv6 != want.IPv6 {
		if err := m.k.WriteSysctls(ctx, interfaceSysctls(name, want)); err != nil {
			return err
		}
		m.log.Debug("configured workload interface", logKeyIface, name, logKeyIndex, index, logKeyIPv4, want.IPv4, logKeyIPv6, want.IPv6)
	}
	next.settings.IPv4, next.settings.IPv6 = want.IPv4, want.IPv6
	// Proxy entries: add the wanted ones (again after a resync, which is
	// harmless), then delete the ones no longer wanted. What is reached is
	// recorded even on failure.
	var errs []error
	var have []netip.Addr
	for _, a := range want.ProxyNDP {
		if err := m.k.AddProxyNeigh(ctx, index, a); err != nil {
			errs = append(errs, err)
			continue
		}
		have = append(have, a)
	}
	for _, a := range did.settings.ProxyNDP {
		if slices.Contains(want.ProxyNDP, a) {
			continue
		}
		if err := m.k.DelProxyNeigh(ctx, index, a); err != nil {
			errs = append(errs, err)
			have = append(have, a)
		}
	}
	slices.SortFunc(have, netip.Addr.Compare)
	next.settings.ProxyNDP = slices.Compact(have)
	m.done[name] = next
	return errors.Join(errs...)
}

// Log keys, defined once.
const (
	logKeyIface = "iface"
	logKeyIndex = "index"
	logKeyIPv4  = "ipv4"
	logKeyIPv6  = "ipv6"
)
