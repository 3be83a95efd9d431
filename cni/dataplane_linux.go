package cni

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// The gateways a workload's default routes point at. Nothing owns these
// addresses: the container has a permanent neighbour entry that maps them
// to the host side's MAC, and the host side answers ARP for everything
// with proxy ARP, as Calico does.
var (
	GatewayV4 = netip.MustParseAddr("169.254.1.1")
	GatewayV6 = netip.MustParseAddr("fe80::1")
)

// dataplane creates and removes the veth of a workload. It works on the
// host namespace through netlink handles opened in it, never on the
// namespace of the calling thread, so that tests can run it in-process
// against namespaces they created.
type dataplane struct {
	host netns.NsHandle
	log  *slog.Logger
}

// attachSpec is what setup builds.
type attachSpec struct {
	hostIf, ifName string
	netnsPath      string
	mtu            int
	ips            []netip.Addr
}

// attachment is what setup built.
type attachment struct {
	hostMAC, contMAC net.HardwareAddr
	hostIndex        int
}

// errHostNetns marks a CNI_NETNS that is the host's own namespace.
var errHostNetns = errors.New("is the host's own network namespace")

// hostNetnsError refuses a CNI_NETNS that is the host's namespace: code 8
// for the runtime, errHostNetns for errors.Is.
type hostNetnsError struct{ te *types.Error }

func (e *hostNetnsError) Error() string   { return e.te.Error() }
func (e *hostNetnsError) Unwrap() []error { return []error{e.te, errHostNetns} }

// openContainer opens the container's namespace and a netlink handle in
// it. The caller closes both. It refuses the plugin's own (host)
// namespace and that of the machine's init process: a workload's veth,
// addresses and default route never go there.
func (d *dataplane) openContainer(path string) (netns.NsHandle, *netlink.Handle, error) {
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return 0, nil, types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("opening network namespace %s: %v", path, err), "")
	}
	if d.isHost(ns) {
		ns.Close()
		return 0, nil, &hostNetnsError{types.NewError(types.ErrInvalidNetNS, fmt.Sprintf("CNI_NETNS %s %v: refusing to configure it", path, errHostNetns), "")}
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return 0, nil, fmt.Errorf("netlink handle in %s: %w", path, err)
	}
	return ns, h, nil
}

// isHost reports whether ns is the plugin's host namespace or the init
// process's (same device and inode of the nsfs file).
func (d *dataplane) isHost(ns netns.NsHandle) bool {
	if ns.Equal(d.host) {
		return true
	}
	initNS, err := netns.GetFromPath("/proc/1/ns/net")
	if err != nil {
		return false // not visible (another PID namespace): the host check above stands
	}
	defer initNS.Close()
	return ns.Equal(initNS)
}

// containerHas reports whether the container's namespace has an
// interface named ifName. It fails for a namespace that cannot be opened
// or is the host's.
func (d *dataplane) containerHas(path, ifName string) (bool, error) {
	cns, ch, err := d.openContainer(path)
	if err != nil {
		return false, err
	}
	defer cns.Close()
	defer ch.Close()
	_, err = ch.LinkByName(ifName)
	var nf netlink.LinkNotFoundError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &nf):
		return false, nil
	default:
		return false, fmt.Errorf("looking for %s in %s: %w", ifName, path, err)
	}
}

// current describes the attachment that exists: both ends' MACs and the
// host side's index.
func (d *dataplane) current(hostIf, path, ifName string) (attachment, error) {
	var att attachment
	cns, ch, err := d.openContainer(path)
	if err != nil {
		return att, err
	}
	defer cns.Close()
	defer ch.Close()
	hh, err := netlink.NewHandleAt(d.host)
	if err != nil {
		return att, fmt.Errorf("netlink handle in the host namespace: %w", err)
	}
	defer hh.Close()
	host, err := hh.LinkByName(hostIf)
	if err != nil {
		return att, fmt.Errorf("host interface %s: %w", hostIf, err)
	}
	cont, err := ch.LinkByName(ifName)
	if err != nil {
		return att, fmt.Errorf("interface %s in %s: %w", ifName, path, err)
	}
	return attachment{hostMAC: host.Attrs().HardwareAddr, contMAC: cont.Attrs().HardwareAddr, hostIndex: host.Attrs().Index}, nil
}

// removeHost deletes the host interface that setup created for att, if it
// is still that one (index and MAC): the peer goes with it. Rollback
// uses it, so that it removes what its own call built and nothing else.
func (d *dataplane) removeHost(hostIf string, att attachment) error {
	hh, err := netlink.NewHandleAt(d.host)
	if err != nil {
		return fmt.Errorf("netlink handle in the host namespace: %w", err)
	}
	defer hh.Close()
	l, err := hh.LinkByIndex(att.hostIndex)
	if err != nil {
		return nil // gone
	}
	if l.Attrs().Name != hostIf || l.Attrs().HardwareAddr.String() != att.hostMAC.String() {
		return nil // the index was reused: not ours
	}
	if err := hh.LinkDel(l); err != nil {
		return fmt.Errorf("deleting host interface %s: %w", hostIf, err)
	}
	return nil
}

// setup creates the veth pair and configures both ends. On failure it
// removes the pair again.
func (d *dataplane) setup(s attachSpec) (att attachment, err error) {
	cns, ch, err := d.openContainer(s.netnsPath)
	if err != nil {
		return att, err
	}
	defer cns.Close()
	defer ch.Close()
	hh, err := netlink.NewHandleAt(d.host)
	if err != nil {
		return att, fmt.Errorf("netlink handle in the host namespace: %w", err)
	}
	defer hh.Close()

	if _, err := ch.LinkByName(s.ifName); err == nil {
		return att, fmt.Errorf("interface %s already exists in %s", s.ifName, s.netnsPath)
	}
	if old, err := hh.LinkByName(s.hostIf); err == nil {
		// A leftover of an attachment whose DEL never came: its name is
		// ours by construction.
		d.log.Info("deleting stale host interface", logKeyIface, s.hostIf)
		if err := hh.LinkDel(old); err != nil {
			return att, fmt.Errorf("deleting stale host interface %s: %w", s.hostIf, err)
		}
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU = s.hostIf, s.mtu
	veth := &netlink.Veth{LinkAttrs: la, PeerName: s.ifName, PeerNamespace: netlink.NsFd(cns), PeerMTU: uint32(s.mtu), PeerTxQLen: -1}
	if err := hh.LinkAdd(veth); err != nil {
		return att, fmt.Errorf("creating veth %s - %s: %w", s.hostIf, s.ifName, err)
	}
	defer func() {
		if err != nil {
			if l, lerr := hh.LinkByName(s.hostIf); lerr == nil {
				if derr := hh.LinkDel(l); derr != nil {
					err = errors.Join(err, fmt.Errorf("removing veth %s: %w", s.hostIf, derr))
				}
			}
		}
	}()
	host, err := hh.LinkByName(s.hostIf)
	if err != nil {
		return att, fmt.Errorf("finding host interface %s: %w", s.hostIf, err)
	}
	att.hostMAC, att.hostIndex = host.Attrs().HardwareAddr, host.Attrs().Index
	if err := d.configureHost(hh, host, s); err != nil {
		return att, err
	}
	cont, err := ch.LinkByName(s.ifName)
	if err != nil {
		return att, fmt.Errorf("finding %s in %s: %w", s.ifName, s.netnsPath, err)
	}
	att.contMAC = cont.Attrs().HardwareAddr
	if err := configureContainer(cns, ch, cont, att.hostMAC, s); err != nil {
		return att, fmt.Errorf("configuring %s in %s: %w", s.ifName, s.netnsPath, err)
	}
	// The host routes last: once they exist the workload is reachable.
	// They carry felix's protocol: they are the routes felix programs for
	// this endpoint, so felix adopts them instead of seeing a foreign
	// route in its way (and removes them if the endpoint never appears).
	// A route to the address that someone else owns (an operator's static
	// route, another routing daemon's) is never replaced: the ADD fails.
	for _, ip := range s.ips {
		if err := checkRouteOwner(hh, ip); err != nil {
			return att, err
		}
	}
	for _, ip := range s.ips {
		r := &netlink.Route{LinkIndex: host.Attrs().Index, Dst: hostNet(ip), Scope: netlink.SCOPE_LINK, Protocol: routetable.ProtoFelix}
		if err := hh.RouteReplace(r); err != nil {
			return att, fmt.Errorf("adding host route %s dev %s: %w", ip, s.hostIf, err)
		}
	}
	return att, nil
}

// checkRouteOwner fails if the host namespace's main table has a route to
// ip's host prefix that another owner than felix (and the plugin, which
// writes felix's protocol) put there.
func checkRouteOwner(hh *netlink.Handle, ip netip.Addr) error {
	routes, err := hh.RouteListFiltered(family(ip), &netlink.Route{Dst: hostNet(ip), Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("listing host routes to %s: %w", ip, err)
	}
	for _, r := range routes {
		if r.Protocol == routetable.ProtoFelix {
			continue
		}
		dev := ""
		if l, err := hh.LinkByIndex(r.LinkIndex); err == nil {
			dev = " dev " + l.Attrs().Name
		}
		return fmt.Errorf("host route %s%s (protocol %s) is not bgpfabric's: refusing to replace it; remove it or the address from the pool", hostNet(ip), dev, r.Protocol)
	}
	return nil
}

// configureHost brings the host side up with proxy ARP (and proxy NDP):
// felix sets these too, but the workload must work before felix sees it.
func (d *dataplane) configureHost(hh *netlink.Handle, host netlink.Link, s attachSpec) error {
	has6 := slices.ContainsFunc(s.ips, func(a netip.Addr) bool { return a.Is6() })
	err := inNS(d.host, func() error {
		n := s.hostIf
		sets := [][2]string{
			{"net/ipv4/conf/" + n + "/proxy_arp", "1"},
			{"net/ipv4/neigh/" + n + "/proxy_delay", "0"},
			{"net/ipv4/conf/" + n + "/forwarding", "1"},
		}
		if has6 {
			sets = append(sets,
				[2]string{"net/ipv6/conf/" + n + "/proxy_ndp", "1"},
				[2]string{"net/ipv6/conf/" + n + "/accept_ra", "0"},
				[2]string{"net/ipv6/conf/" + n + "/forwarding", "1"})
		}
		for _, kv := range sets {
			if err := writeSysctl(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("host interface %s: %w", s.hostIf, err)
	}
	if err := hh.LinkSetUp(host); err != nil {
		return fmt.Errorf("setting %s up: %w", s.hostIf, err)
	}
	return nil
}

// configureContainer gives the container side its addresses, the
// gateways' neighbour entries and the default routes.
func configureContainer(cns netns.NsHandle, ch *netlink.Handle, cont netlink.Link, hostMAC net.HardwareAddr, s attachSpec) error {
	var has4, has6 bool
	for _, ip := range s.ips {
		has4, has6 = has4 || ip.Is4(), has6 || ip.Is6()
	}
	if has6 {
		err := inNS(cns, func() error {
			for _, kv := range [][2]string{
				{"net/ipv6/conf/all/disable_ipv6", "0"},
				{"net/ipv6/conf/" + s.ifName + "/disable_ipv6", "0"},
				{"net/ipv6/conf/" + s.ifName + "/accept_dad", "0"},
			} {
				if err := writeSysctl(kv[0], kv[1]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := ch.LinkSetUp(cont); err != nil {
		return fmt.Errorf("setting up: %w", err)
	}
	idx := cont.Attrs().Index
	for _, ip := range s.ips {
		a := &netlink.Addr{IPNet: hostNet(ip)}
		if ip.Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := ch.AddrReplace(cont, a); err != nil {
			return fmt.Errorf("adding address %s: %w", ip, err)
		}
	}
	for _, gw := range gateways(has4, has6) {
		n := &netlink.Neigh{LinkIndex: idx, IP: gw.AsSlice(), HardwareAddr: hostMAC, State: netlink.NUD_PERMANENT, Family: family(gw)}
		if err := ch.NeighSet(n); err != nil {
			return fmt.Errorf("adding neighbour %s: %w", gw, err)
		}
		if gw.Is4() {
			r := &netlink.Route{LinkIndex: idx, Dst: hostNet(gw), Scope: netlink.SCOPE_LINK}
			if err := ch.RouteReplace(r); err != nil {
				return fmt.Errorf("adding route %s: %w", gw, err)
			}
		}
		r := &netlink.Route{LinkIndex: idx, Dst: defaultNet(gw), Gw: gw.AsSlice()}
		if err := ch.RouteReplace(r); err != nil {
			return fmt.Errorf("adding default route via %s: %w", gw, err)
		}
	}
	return nil
}

func gateways(has4, has6 bool) []netip.Addr {
	var out []netip.Addr
	if has4 {
		out = append(out, GatewayV4)
	}
	if has6 {
		out = append(out, GatewayV6)
	}
	return out
}

func family(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func hostNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}
}

func defaultNet(a netip.Addr) *net.IPNet {
	return &net.IPNet{IP: make(net.IP, a.BitLen()/8), Mask: net.CIDRMask(0, a.BitLen())}
}

// ownership is what is known about whether a host interface is an
// attachment's.
type ownership int

const (
	ownerUnknown ownership = iota // no record, no datastore
	ownerYes
	ownerNo
)

// teardown removes the workload's veth. The container side (CNI_IFNAME
// in netnsPath) is deleted, taking the host side with it, only when it is
// the peer of the host interface hostIf and that is not known to be
// another attachment's: an interface of that name that is not paired with
// ours (another plugin's, one that was there before a failed ADD) stays.
// Otherwise the host side is deleted only if owner says it is the
// attachment's. Whatever does not exist is skipped. A CNI_NETNS that is
// the host's own namespace is never touched.
func (d *dataplane) teardown(hostIf, netnsPath, ifName string, owner func(netlink.Link) ownership) error {
	hh, err := netlink.NewHandleAt(d.host)
	if err != nil {
		return fmt.Errorf("netlink handle in the host namespace: %w", err)
	}
	defer hh.Close()
	host, err := hh.LinkByName(hostIf)
	if err != nil || host.Type() != "veth" {
		host = nil // gone (with its container side), or not a veth of ours
	}
	if netnsPath != "" && host != nil {
		cns, ch, err := d.openContainer(netnsPath)
		switch {
		case err == nil:
			l, lerr := ch.LinkByName(ifName)
			if lerr == nil && paired(host, l) && owner(host) != ownerNo {
				lerr = ch.LinkDel(l)
				if lerr != nil {
					err = fmt.Errorf("deleting %s in %s: %w", ifName, netnsPath, lerr)
				} else {
					host = nil // gone with its peer
				}
			}
			ch.Close()
			cns.Close()
			if err != nil {
				return err
			}
		case errors.Is(err, errHostNetns):
			d.log.Warn("CNI_NETNS is the host's namespace: leaving it alone", logKeyError, err)
		case !errors.Is(err, os.ErrNotExist) && !isNotExist(err):
			d.log.Info("container namespace not usable; cleaning up the host side only", logKeyError, err)
		}
	}
	if host == nil || owner(host) != ownerYes {
		return nil
	}
	if err := hh.LinkDel(host); err != nil {
		return fmt.Errorf("deleting host interface %s: %w", hostIf, err)
	}
	return nil
}

// paired reports whether cont (in a container) is the veth peer of host:
// each names the other's index as its link.
func paired(host, cont netlink.Link) bool {
	return cont.Type() == "veth" && host.Attrs().ParentIndex == cont.Attrs().Index && cont.Attrs().ParentIndex == host.Attrs().Index
}

func isNotExist(err error) bool {
	var te *types.Error
	return errors.As(err, &te) && te.Code == types.ErrInvalidNetNS
}

// checkSpec is what check expects.
type checkSpec struct {
	attachSpec
	contMAC string
}

// check verifies that the attachment is as setup left it: both ends of
// the veth, up and paired, the addresses, the gateways' neighbour entries,
// the default routes and the host routes.
func (d *dataplane) check(s checkSpec) error {
	cns, ch, err := d.openContainer(s.netnsPath)
	if err != nil {
		return err
	}
	defer cns.Close()
	defer ch.Close()
	hh, err := netlink.NewHandleAt(d.host)
	if err != nil {
		return fmt.Errorf("netlink handle in the host namespace: %w", err)
	}
	defer hh.Close()
	host, err := hh.LinkByName(s.hostIf)
	if err != nil {
		return fmt.Errorf("host interface %s: %w", s.hostIf, err)
	}
	cont, err := ch.LinkByName(s.ifName)
	if err != nil {
		return fmt.Errorf("interface %s in %s: %w", s.ifName, s.netnsPath, err)
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cont.Type() != "veth" || host.Type() != "veth" || cont.Attrs().ParentIndex != host.Attrs().Index {
		bad("%s is not the peer of host interface %s", s.ifName, s.hostIf)
	}
	if cont.Attrs().Flags&net.FlagUp == 0 || host.Attrs().Flags&net.FlagUp == 0 {
		bad("the veth is not up")
	}
	if s.contMAC != "" && cont.Attrs().HardwareAddr.String() != s.contMAC {
		bad("%s has MAC %s, want %s", s.ifName, cont.Attrs().HardwareAddr, s.contMAC)
	}
	addrs, err := ch.AddrList(cont, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("listing addresses of %s: %w", s.ifName, err)
	}
	var has4, has6 bool
	for _, ip := range s.ips {
		has4, has6 = has4 || ip.Is4(), has6 || ip.Is6()
		if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IPNet.String() == hostNet(ip).String() }) {
			bad("%s lacks address %s", s.ifName, hostNet(ip))
		}
		routes, err := hh.RouteListFiltered(0, &netlink.Route{Dst: hostNet(ip)}, netlink.RT_FILTER_DST)
		if err != nil || !slices.ContainsFunc(routes, func(r netlink.Route) bool { return r.LinkIndex == host.Attrs().Index }) {
			bad("host route %s dev %s is missing", ip, s.hostIf)
		}
	}
	for _, gw := range gateways(has4, has6) {
		neighs, err := ch.NeighList(cont.Attrs().Index, family(gw))
		if err != nil || !slices.ContainsFunc(neighs, func(n netlink.Neigh) bool {
			return n.IP.Equal(gw.AsSlice()) && n.State&netlink.NUD_PERMANENT != 0 && n.HardwareAddr.String() == host.Attrs().HardwareAddr.String()
		}) {
			bad("permanent neighbour %s -> %s is missing", gw, host.Attrs().HardwareAddr)
		}
		routes, err := ch.RouteListFiltered(family(gw), &netlink.Route{LinkIndex: cont.Attrs().Index}, netlink.RT_FILTER_OIF)
		if err != nil || !slices.ContainsFunc(routes, func(r netlink.Route) bool {
			isDefault := r.Dst == nil || r.Dst.IP.IsUnspecified() && prefixLen(r.Dst) == 0
			return isDefault && r.Gw.Equal(gw.AsSlice())
		}) {
			bad("default route via %s dev %s is missing", gw, s.ifName)
		}
	}
	return errors.Join(errs...)
}

func prefixLen(n *net.IPNet) int {
	ones, _ := n.Mask.Size()
	return ones
}
