package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"time"

	gobgpapi "github.com/osrg/gobgp/v3/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// The faults of the Go API: what `faults:` in a topology does, callable
// from a test at any time. They change the run's namespaces and
// processes only; Close (or the crash cleanup of the next run) removes
// the namespaces with every qdisc and nftables table in them, and
// continues a paused agent before it stops it.

// Impair puts an impairment on what a node sends through one of its
// interfaces (Plan.Interface finds it), replacing the one there; nil
// removes it. See docs/topologies.md, "Impairments".
func (f *Fabric) Impair(node, iface string, ip *topology.ImpairPlan) error {
	n := f.Plan.Node(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	return f.net.SetImpairment(n.Netns, iface, ip)
}

// ImpairedInProcess lists the interfaces ("node interface") whose
// impairment this process applies through NFQUEUE, on kernels without
// sch_netem: it ends when the process does (see docs/topologies.md,
// "Impairments"), while qdiscs and nftables rules stay with the run.
func (f *Fabric) ImpairedInProcess() []string {
	var out []string
	for _, k := range f.net.QueueImpaired() {
		name := k[0]
		for _, n := range f.Plan.Nodes {
			if n.Netns == k[0] {
				name = n.Name
			}
		}
		out = append(out, name+" "+k[1])
	}
	return out
}

// ownImpairment is the impairment the plan gives an interface (nil for
// none): what an impair fault restores.
func (f *Fabric) ownImpairment(node, iface string) *topology.ImpairPlan {
	if n := f.Plan.Node(node); n != nil {
		for _, ifc := range n.Interfaces {
			if ifc.Name == iface {
				return ifc.Impair
			}
		}
	}
	return nil
}

// Partition cuts the nodes off from the nodes in from (node names), in
// both directions, or with oneWay only what nodes send to from. Nodes
// that share a segment lose every frame between their ports on its
// bridge; nodes joined by a link lose the link; nodes further apart lose
// the packets between their own addresses (their BGP sessions), not the
// traffic routed through others. name names the rules (a DNS label,
// unique among the partitions in place). heal removes them.
func (f *Fabric) Partition(name string, nodes, from []string, oneWay bool) (heal func() error, err error) {
	if name == "" || len(name) > 40 {
		return nil, fmt.Errorf("partition name %q: want 1 to 40 characters", name)
	}
	var drops []netbuild.Drop
	for _, a := range nodes {
		na := f.Plan.Node(a)
		if na == nil {
			return nil, fmt.Errorf("no node %q", a)
		}
		for _, b := range from {
			nb := f.Plan.Node(b)
			if nb == nil {
				return nil, fmt.Errorf("no node %q", b)
			}
			if a == b {
				return nil, fmt.Errorf("node %s is on both sides of the partition", a)
			}
			drops = append(drops, f.partitionDrops(na, nb, oneWay)...)
		}
	}
	table := "part-" + name
	touched, err := f.net.AddDrops(table, drops)
	heal = func() error { return f.net.RemoveTables(table, touched) }
	if err != nil {
		return nil, errors.Join(err, heal())
	}
	return heal, nil
}

// PartitionDatastore cuts nodes off from the datastore (not from each
// other): their connections end and new ones go unanswered until heal.
// It needs the datastore relay (Options.DatastoreRelay, or a topology with
// such a fault), which a run that outlives its process does not have.
func (f *Fabric) PartitionDatastore(nodes []string) (heal func() error, err error) {
	if f.relay == nil {
		return nil, fmt.Errorf("cutting nodes off from the datastore needs the datastore relay: boot with Options.DatastoreRelay (sim run does when the topology has such a fault; sim up cannot)")
	}
	for _, n := range nodes {
		if f.Plan.Node(n) == nil {
			return nil, fmt.Errorf("no node %q", n)
		}
	}
	heal = func() error {
		var errs []error
		for _, n := range nodes {
			errs = append(errs, f.relay.setCut(n, false))
		}
		return errors.Join(errs...)
	}
	for _, n := range nodes {
		if err := f.relay.setCut(n, true); err != nil {
			return nil, errors.Join(err, heal())
		}
	}
	return heal, nil
}

// partitionDrops are the rules that cut a off from b.
func (f *Fabric) partitionDrops(a, b *topology.NodePlan, oneWay bool) []netbuild.Drop {
	var out []netbuild.Drop
	direct := false
	if a.Segment != "" && a.Segment == b.Segment {
		seg := f.Plan.Segment(a.Segment)
		pa, pb := bridgePort(a, seg.Name), bridgePort(b, seg.Name)
		out = append(out, netbuild.Drop{Netns: seg.Netns, Bridge: true, InPort: pa, OutPort: pb})
		if !oneWay {
			out = append(out, netbuild.Drop{Netns: seg.Netns, Bridge: true, InPort: pb, OutPort: pa})
		}
		direct = true
	}
	for _, ifc := range a.Interfaces {
		if ifc.PeerNode != b.Name {
			continue
		}
		d := netbuild.Drop{Netns: a.Netns, OutIf: ifc.Name}
		if !oneWay {
			d.InIf = ifc.Name
		}
		out = append(out, d)
		direct = true
	}
	if !direct {
		var addrs []netip.Addr
		for _, ifc := range b.Interfaces {
			for _, p := range []netip.Prefix{ifc.IPv4, ifc.IPv6} {
				if p.IsValid() {
					addrs = append(addrs, p.Addr())
				}
			}
		}
		d := netbuild.Drop{Netns: a.Netns, To: addrs}
		if !oneWay {
			d.From = addrs
		}
		out = append(out, d)
	}
	return out
}

func bridgePort(n *topology.NodePlan, segment string) string {
	for _, ifc := range n.Interfaces {
		if ifc.Segment == segment {
			return ifc.BridgePort
		}
	}
	return ""
}

// PauseAgent stops a node's agent with SIGSTOP, with its process group
// (the speaker child of a bgpfabric node, a router's daemons): the
// process lives but says nothing, so its peers' hold timers run out.
// ResumeAgent continues it.
func (f *Fabric) PauseAgent(node string) error { return f.pauseAgent(node, true) }

// ResumeAgent continues an agent that PauseAgent stopped.
func (f *Fabric) ResumeAgent(node string) error { return f.pauseAgent(node, false) }

func (f *Fabric) pauseAgent(node string, stop bool) error {
	if f.Plan.Node(node) == nil {
		return fmt.Errorf("no node %q", node)
	}
	rec, ok := f.run.Proc(agentProcName(node))
	if p := f.procs.get(agentProcName(node)); p != nil {
		rec, ok = p.rec, p.running()
	}
	if !ok {
		return fmt.Errorf("the agent of %s does not run", node)
	}
	return rec.Pause(stop)
}

// Flap takes a node's interface down and up count times, staying down,
// then up, for interval each time; it returns with the link up.
func (f *Fabric) Flap(ctx context.Context, node, iface string, count int, interval time.Duration) error {
	n := f.Plan.Node(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	wait := func() error {
		t.Reset(interval)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	for i := range count {
		if err := f.net.SetLink(n.Netns, iface, false); err != nil {
			return err
		}
		err := wait()
		if uerr := f.net.SetLink(n.Netns, iface, true); uerr != nil || err != nil {
			return errors.Join(err, uerr)
		}
		if i < count-1 {
			if err := wait(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Qdiscs lists the kinds of the sim's qdiscs on a node's interface
// ("netem", "tbf"): none when it has no impairment of theirs.
func (f *Fabric) Qdiscs(node, iface string) ([]string, error) {
	n := f.Plan.Node(node)
	if n == nil {
		return nil, fmt.Errorf("no node %q", node)
	}
	qs, err := f.net.Qdiscs(n.Netns, iface)
	var out []string
	for _, q := range qs {
		out = append(out, q.Type())
	}
	return out, err
}

// ResetSession ends the BGP session between node and peer with a
// NOTIFICATION Cease, sent by one of its ends, and the session then comes
// back as the routers' timers allow. The end that sends it is node, if the
// sim can tell it to, else peer: a bgpfabric node or reflector through its
// control socket (POST /sessions/reset: Cease, Administrative Reset), a
// gobgpd router through its gRPC API (disable and enable the peer: Cease,
// Administrative Shutdown). BIRD and FRR have no such control in the sim;
// a session between two of them cannot be reset.
func (f *Fabric) ResetSession(ctx context.Context, node, peer string) error {
	r, o := f.Plan.Node(node), f.Plan.Node(peer)
	if r == nil || o == nil {
		return fmt.Errorf("no node %q or %q", node, peer)
	}
	if !topology.ResetsSessions(r) {
		r, o = o, r
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	switch {
	case r.Agent == topology.AgentNode:
		return resetAgentSession(ctx, router.ControlSocketPath(f.run.Dir, r.Name), r, o)
	case r.Agent == topology.AgentReflector:
		// DefaultReflectorCommand's --control-socket.
		return resetAgentSession(ctx, filepath.Join(f.run.Dir, "reflector."+r.Name+".sock"), r, o)
	case topology.ResetsSessions(r):
		return f.resetGoBGPdSession(ctx, r, o)
	}
	return fmt.Errorf("session-reset between %s and %s: neither is a bgpfabric agent or a gobgpd router", node, peer)
}

// resetAgentSession asks bgpfabric agent r, over its control socket, to
// reset its sessions with o: one per address of o's that r has a session
// with (IPv4 and IPv6 on a dual-stack fabric).
func resetAgentSession(ctx context.Context, sock string, r, o *topology.NodePlan) error {
	var errs []error
	reset := 0
	for _, a := range nodeAddrs(o) {
		err := router.ResetSession(ctx, sock, a)
		switch {
		case errors.Is(err, router.ErrNoSession):
		case err != nil:
			errs = append(errs, fmt.Errorf("resetting %s's session to %s (%s): %w", r.Name, o.Name, a, err))
		default:
			reset++
		}
	}
	if reset == 0 && len(errs) == 0 {
		return fmt.Errorf("%s has no BGP session with %s", r.Name, o.Name)
	}
	return errors.Join(errs...)
}

// nodeAddrs are a node's addresses: its peering addresses, then those of
// its interfaces, each once.
func nodeAddrs(n *topology.NodePlan) []netip.Addr {
	var out []netip.Addr
	add := func(p netip.Prefix) {
		if p.IsValid() && !slices.Contains(out, p.Addr()) {
			out = append(out, p.Addr())
		}
	}
	add(n.IPv4)
	add(n.IPv6)
	for _, ifc := range n.Interfaces {
		add(ifc.IPv4)
		add(ifc.IPv6)
	}
	return out
}

// resetGoBGPdSession tells gobgpd router r to reset its sessions with o.
func (f *Fabric) resetGoBGPdSession(ctx context.Context, r, o *topology.NodePlan) error {
	var addrs []string
	for _, nb := range r.Neighbors {
		if nb.Node == o.Name {
			addrs = append(addrs, nb.Address.String())
		}
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%s and %s have no BGP session", r.Name, o.Name)
	}
	sock := filepath.Join(f.run.Dir, "routers", r.Name, gobgpdSocket)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	c := gobgpapi.NewGobgpApiClient(conn)
	var errs []error
	// Disable and enable, rather than ResetPeer: Debian's gobgpd (3.10)
	// then stays idle for 30 s whatever idle-hold-time-after-reset says;
	// after an enable it is ready again within its idle hold time (5 s).
	for _, a := range addrs {
		if _, err := c.DisablePeer(ctx, &gobgpapi.DisablePeerRequest{Address: a, Communication: "bgpfabric sim session-reset"}); err != nil {
			errs = append(errs, fmt.Errorf("resetting %s's session to %s (%s): %w", r.Name, o.Name, a, err))
			continue
		}
		if _, err := c.EnablePeer(ctx, &gobgpapi.EnablePeerRequest{Address: a}); err != nil {
			errs = append(errs, fmt.Errorf("enabling %s's session to %s (%s) again: %w", r.Name, o.Name, a, err))
		}
	}
	return errors.Join(errs...)
}
