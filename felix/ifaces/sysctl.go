package ifaces

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
)

// Sysctl is one setting under /proc/sys.
type Sysctl struct {
	// Path is relative to /proc/sys, with slashes:
	// "net/ipv4/conf/wl1/proxy_arp".
	Path  string
	Value string
	// Optional settings are skipped when their file does not exist (IPv6
	// disabled in the namespace or on the interface).
	Optional bool
}

func (s Sysctl) String() string { return s.Path + "=" + s.Value }

// globalSysctls turn forwarding on for the whole namespace: a workload's
// packets come in on its interface and leave on another.
func globalSysctls() []Sysctl {
	return []Sysctl{
		{Path: "net/ipv4/ip_forward", Value: "1"},
		{Path: "net/ipv6/conf/all/forwarding", Value: "1", Optional: true},
	}
}

// Settings are what a workload interface needs.
type Settings struct {
	// IPv4 and IPv6 select the families whose settings are written.
	IPv4, IPv6 bool
	// ProxyNDP are addresses (the workloads' IPv6 gateways) for which the
	// host answers neighbour solicitations on the interface.
	ProxyNDP []netip.Addr
}

// interfaceSysctls are the settings of a workload interface, after Calico
// felix's endpoint manager (configureInterface) and CNI plugin.
//
// Not set, unlike Calico: route_localnet, which Calico turns on so that
// its iptables rules can DNAT to 127.0.0.1; bgpfabric does no NAT to the
// host, and routing 127/8 off the loopback only widens what a workload
// can reach.
func interfaceSysctls(name string, s Settings) []Sysctl {
	v4 := "net/ipv4/conf/" + name + "/"
	v6 := "net/ipv6/conf/" + name + "/"
	out := []Sysctl{
		// No router advertisements from workloads, even when IPv6 is not
		// used: a workload must not be able to add routes to the host.
		// (Forwarding already makes the kernel ignore them unless
		// accept_ra is 2; this is Calico's belt and braces.)
		{Path: v6 + "accept_ra", Value: "0", Optional: true},
	}
	if s.IPv4 {
		out = append(out,
			// Forward packets that come from the workload.
			Sysctl{Path: v4 + "forwarding", Value: "1"},
			// Answer the workload's ARP requests for any address the
			// host routes elsewhere with the host side's MAC.
			Sysctl{Path: v4 + "proxy_arp", Value: "1"},
			// ...at once, not after the default random delay of up to
			// 0.8 s.
			Sysctl{Path: "net/ipv4/neigh/" + name + "/proxy_delay", Value: "0"},
			// Strict reverse-path filtering: a workload can only send
			// from the addresses routed to it (no spoofing).
			Sysctl{Path: v4 + "rp_filter", Value: "1"},
		)
	}
	if s.IPv6 {
		out = append(out,
			Sysctl{Path: v6 + "forwarding", Value: "1"},
			// Answer neighbour solicitations for the proxy entries
			// (the workloads' gateways)...
			Sysctl{Path: v6 + "proxy_ndp", Value: "1"},
			// ...at once.
			Sysctl{Path: "net/ipv6/neigh/" + name + "/proxy_delay", Value: "0"},
		)
	}
	return out
}

// writeAll writes every sysctl with write, skipping the optional ones whose
// file does not exist, and returns every failure. One failure does not stop
// the others.
func writeAll(items []Sysctl, write func(path, value string) error) error {
	var errs []error
	for _, s := range items {
		err := write(s.Path, s.Value)
		if err == nil || s.Optional && errors.Is(err, fs.ErrNotExist) {
			continue
		}
		errs = append(errs, fmt.Errorf("setting %s: %w", s, err))
	}
	return errors.Join(errs...)
}
