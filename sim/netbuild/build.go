// Package netbuild builds the network of a simulation plan out of
// namespaces and veth pairs, and nothing else: a namespace per node, per
// workload and per L2 segment (whose bridge lives in its own namespace), a
// veth from every node into its segment's bridge, a veth per
// point-to-point link, addresses, loopbacks up and forwarding on.
//
// Every link is created through a netlink handle bound to one of the run's
// namespaces, with its peer end created directly in another of them, so
// the namespace the sim runs in is never touched. Every namespace is
// recorded (Recorder) before it is created, so that a crash half-way
// leaves a record of all that exists.
package netbuild

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Recorder is told about namespaces before they are created.
type Recorder interface {
	AddNamespaces(names ...string) error
}

// Options tune Build.
type Options struct {
	// Parallel is how many namespaces are set up at once (default 8).
	Parallel int
	Logger   *slog.Logger
}

// Net is a built network: open handles to its namespaces. Close releases
// the handles; deleting the namespaces is runstate's job.
type Net struct {
	mu      sync.Mutex
	handles map[string]netns.NsHandle
	log     *slog.Logger

	// queues are the readers of the interfaces impaired through NFQUEUE
	// (nfqueue.go), by namespace and interface; qmu serialises changes.
	qmu    sync.Mutex
	queues map[queueKey]*queue
	// noNetem is set once the kernel refused a netem qdisc.
	noNetem atomic.Bool
}

// Handle returns an open handle to a namespace of the net. The handle
// belongs to the Net: do not close it.
func (n *Net) Handle(name string) (netns.NsHandle, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, ok := n.handles[name]
	return h, ok
}

// Netlink opens a netlink handle in a namespace of the net; the caller
// closes it.
func (n *Net) Netlink(name string) (*netlink.Handle, error) {
	h, ok := n.Handle(name)
	if !ok {
		return nil, fmt.Errorf("no namespace %s in this run", name)
	}
	return netlink.NewHandleAt(h)
}

// Abandon closes what Close does but leaves the impairment readers'
// nftables rules in place, as a crash of the process would (their bypass
// flag then lets everything through; for tests of crash cleanup).
func (n *Net) Abandon() {
	n.qmu.Lock()
	for k, q := range n.queues {
		q.close()
		delete(n.queues, k)
	}
	n.qmu.Unlock()
	n.Close()
}

// Close stops the net's impairment readers, removing their nftables
// tables, and releases the namespace handles.
func (n *Net) Close() error {
	err := n.stopQueues()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, h := range n.handles {
		h.Close()
	}
	n.handles = nil
	return err
}

func (n *Net) add(name string, h netns.NsHandle) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.handles[name] = h
}

// Build creates the plan's namespaces and links. On error, what was
// created is recorded in rec and left for the caller's teardown.
func Build(ctx context.Context, plan *topology.Plan, rec Recorder, o Options) (*Net, error) {
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := rec.AddNamespaces(plan.Namespaces()...); err != nil {
		return nil, fmt.Errorf("recording namespaces: %w", err)
	}
	n := &Net{handles: map[string]netns.NsHandle{}, log: log}
	b := &builder{plan: plan, net: n, log: log}

	// Namespaces first (segments, nodes, workloads), then the segments'
	// bridges and the nodes' ports, then point-to-point links.
	var jobs []func() error
	for _, s := range plan.Segments {
		jobs = append(jobs, func() error { return b.segment(s) })
	}
	for _, nd := range plan.Nodes {
		jobs = append(jobs, func() error { return b.namespace(nd.Netns, true) })
	}
	for _, w := range plan.Workloads {
		jobs = append(jobs, func() error { return b.namespace(w.Netns, false) })
	}
	if err := parallel(ctx, o.Parallel, jobs); err != nil {
		return n, err
	}
	jobs = jobs[:0]
	for _, nd := range plan.Nodes {
		jobs = append(jobs, func() error { return b.ports(nd) })
	}
	if err := parallel(ctx, o.Parallel, jobs); err != nil {
		return n, err
	}
	jobs = jobs[:0]
	for _, l := range plan.Links {
		jobs = append(jobs, func() error { return b.link(l) })
	}
	if err := parallel(ctx, o.Parallel, jobs); err != nil {
		return n, err
	}
	// Impairments last, on interfaces that all exist.
	return n, parallel(ctx, o.Parallel, b.impair())
}

// parallel runs jobs on up to width goroutines and returns every error.
func parallel(ctx context.Context, width int, jobs []func() error) error {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for _, job := range jobs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := job(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

type builder struct {
	plan *topology.Plan
	net  *Net
	log  *slog.Logger
}

// namespace creates a namespace with lo up; a router namespace forwards.
// IPv6 duplicate address detection is off, so that addresses are usable at
// once (the sim's addresses are unique by construction).
func (b *builder) namespace(name string, router bool) error {
	h, err := newNamed(name, func() error {
		settings := [][2]string{
			{"net/ipv6/conf/all/accept_dad", "0"},
			{"net/ipv6/conf/default/accept_dad", "0"},
		}
		if router {
			settings = append(settings,
				[2]string{"net/ipv4/ip_forward", "1"},
				[2]string{"net/ipv6/conf/all/forwarding", "1"},
				[2]string{"net/ipv6/conf/default/forwarding", "1"})
		}
		for _, s := range settings {
			if err := sysctl(s[0], s[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.net.add(name, h)
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", name, err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("setting lo up in %s: %w", name, err)
	}
	return nil
}

// segment creates a segment's namespace and its bridge.
func (b *builder) segment(s *topology.SegmentPlan) error {
	if err := b.namespace(s.Netns, false); err != nil {
		return err
	}
	nl, err := b.net.Netlink(s.Netns)
	if err != nil {
		return err
	}
	defer nl.Close()
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: s.Bridge}}
	if err := nl.LinkAdd(br); err != nil {
		return fmt.Errorf("adding bridge %s in %s: %w", s.Bridge, s.Netns, err)
	}
	if err := nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("setting bridge %s up in %s: %w", s.Bridge, s.Netns, err)
	}
	return nil
}

// ports creates a node's veth into its segment's bridge and addresses it.
func (b *builder) ports(nd *topology.NodePlan) error {
	for _, ifc := range nd.Interfaces {
		if ifc.Segment == "" {
			continue
		}
		seg := b.plan.Segment(ifc.Segment)
		nodeNL, err := b.net.Netlink(nd.Netns)
		if err != nil {
			return err
		}
		defer nodeNL.Close()
		segNL, err := b.net.Netlink(seg.Netns)
		if err != nil {
			return err
		}
		defer segNL.Close()
		segH, _ := b.net.Handle(seg.Netns)
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: ifc.Name},
			PeerName:      ifc.BridgePort,
			PeerNamespace: netlink.NsFd(segH),
		}
		if err := nodeNL.LinkAdd(veth); err != nil {
			return fmt.Errorf("adding veth %s (%s) - %s (%s): %w", ifc.Name, nd.Netns, ifc.BridgePort, seg.Netns, err)
		}
		port, err := segNL.LinkByName(ifc.BridgePort)
		if err != nil {
			return fmt.Errorf("finding port %s in %s: %w", ifc.BridgePort, seg.Netns, err)
		}
		br, err := segNL.LinkByName(seg.Bridge)
		if err != nil {
			return fmt.Errorf("finding bridge in %s: %w", seg.Netns, err)
		}
		if err := segNL.LinkSetMaster(port, br); err != nil {
			return fmt.Errorf("attaching %s to %s in %s: %w", ifc.BridgePort, seg.Bridge, seg.Netns, err)
		}
		if err := segNL.LinkSetUp(port); err != nil {
			return fmt.Errorf("setting %s up in %s: %w", ifc.BridgePort, seg.Netns, err)
		}
		if err := configure(nodeNL, nd.Netns, ifc.Name, ifc.IPv4, ifc.IPv6); err != nil {
			return err
		}
	}
	return nil
}

// link creates a point-to-point veth between two nodes.
func (b *builder) link(l *topology.LinkPlan) error {
	a, z := b.plan.Node(l.A.Node), b.plan.Node(l.B.Node)
	aNL, err := b.net.Netlink(a.Netns)
	if err != nil {
		return err
	}
	defer aNL.Close()
	zNL, err := b.net.Netlink(z.Netns)
	if err != nil {
		return err
	}
	defer zNL.Close()
	zH, _ := b.net.Handle(z.Netns)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.A.Interface},
		PeerName:      l.B.Interface,
		PeerNamespace: netlink.NsFd(zH),
	}
	if err := aNL.LinkAdd(veth); err != nil {
		return fmt.Errorf("adding link %s/%s - %s/%s: %w", a.Name, l.A.Interface, z.Name, l.B.Interface, err)
	}
	return errors.Join(
		configure(aNL, a.Netns, l.A.Interface, l.A.IPv4, l.A.IPv6),
		configure(zNL, z.Netns, l.B.Interface, l.B.IPv4, l.B.IPv6))
}

// configure adds addresses to an interface and sets it up.
func configure(nl *netlink.Handle, ns, name string, addrs ...netip.Prefix) error {
	link, err := nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("finding %s in %s: %w", name, ns, err)
	}
	for _, a := range addrs {
		if !a.IsValid() {
			continue
		}
		ipnet := &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}
		if err := nl.AddrAdd(link, &netlink.Addr{IPNet: ipnet}); err != nil {
			return fmt.Errorf("adding %s to %s in %s: %w", a, name, ns, err)
		}
	}
	if err := nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting %s up in %s: %w", name, ns, err)
	}
	return nil
}

// SetLink sets a node's interface up or down (link faults).
func (n *Net) SetLink(netnsName, ifname string, up bool) error {
	nl, err := n.Netlink(netnsName)
	if err != nil {
		return err
	}
	defer nl.Close()
	link, err := nl.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("finding %s in %s: %w", ifname, netnsName, err)
	}
	if up {
		err = nl.LinkSetUp(link)
	} else {
		err = nl.LinkSetDown(link)
	}
	if err != nil {
		return fmt.Errorf("setting %s in %s up=%v: %w", ifname, netnsName, up, err)
	}
	return nil
}

// Attach opens handles to the namespaces of a plan that exist already (a
// run built by another process, for status, checks and faults).
func Attach(plan *topology.Plan) (*Net, error) {
	n := &Net{handles: map[string]netns.NsHandle{}}
	for _, name := range plan.Namespaces() {
		h, err := netns.GetFromName(name)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("opening namespace %s: %w", name, err)
		}
		n.add(name, h)
	}
	return n, nil
}

// Namespace creates one more namespace for the run (the datastore's), with
// lo up, recorded in rec first, and returns its handle; an existing one of
// the net is returned as it is.
func Namespace(n *Net, rec Recorder, name string) (netns.NsHandle, error) {
	if h, ok := n.Handle(name); ok {
		return h, nil
	}
	// One a process that booted the run created (the datastore's, when
	// `sim fault` restarts it in a run that `sim up` booted).
	if h, err := netns.GetFromName(name); err == nil {
		n.add(name, h)
		return h, nil
	}
	if err := rec.AddNamespaces(name); err != nil {
		return netns.None(), err
	}
	b := &builder{net: n}
	if err := b.namespace(name, false); err != nil {
		return netns.None(), err
	}
	h, _ := n.Handle(name)
	return h, nil
}
