package netbuild

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Impairments are qdiscs on an interface's egress, set through rtnetlink:
// a netem qdisc (handle 1:) at the root for delay, jitter, loss,
// duplication, reordering and corruption, and a tbf qdisc for the rate
// limit, at the root when there is no netem, else as netem's child.
// Random loss alone (no correlation, nothing else netem does) is an
// nftables rule on the interface's egress hook instead (setLoss). The
// netem message is built here from a thread inside the interface's
// namespace: vishvananda/netlink's Netem type has no delay distribution
// and counts latency in scheduler ticks, where netem takes nanoseconds.
//
// netem is a module (sch_netem) that some kernels lack; tbf is more
// common. Without netem, the sim does netem's work itself: the packets
// leaving the interface go through an NFQUEUE to a reader in the sim's
// process (nfqueue.go), and a rate limit is still tbf.

// Netem attributes newer than vishvananda/netlink's list
// (include/uapi/linux/pkt_sched.h).
const (
	tcaNetemLatency64 = 10
	tcaNetemJitter64  = 11
)

// netemLimit is netem's queue, in packets (tc's default).
const netemLimit = 1000

// Handles of the sim's qdiscs: netem at the root (1:), tbf at the root
// (2:) or under netem's class 1:1 (2:).
var (
	netemHandle = netlink.MakeHandle(1, 0)
	tbfHandle   = netlink.MakeHandle(2, 0)
)

// tbfLatency is how long a packet may wait for the rate limit before tbf
// drops it (tc's "latency"), and tbfMinBurst the smallest bucket.
const (
	tbfLatency  = 50 * time.Millisecond
	tbfMinBurst = 3000
)

// lossByNft reports whether an impairment's only netem part is random,
// uncorrelated loss: that is an nftables rule (setLoss), which kernels
// without netem have too.
func lossByNft(ip *topology.ImpairPlan) bool {
	return ip.Loss > 0 && ip.LossCorrelation == 0 && ip.Delay == 0 && ip.Jitter == 0 && ip.Duplicate == 0 && ip.Reorder == 0 && ip.Corrupt == 0
}

// needsNetem reports whether an impairment needs a netem qdisc.
func needsNetem(ip *topology.ImpairPlan) bool {
	return !lossByNft(ip) && (ip.Delay > 0 || ip.Jitter > 0 || ip.Loss > 0 || ip.Duplicate > 0 || ip.Reorder > 0 || ip.Corrupt > 0)
}

// SetImpairment puts an impairment on what leaves an interface of a
// namespace of the net, replacing the one there; nil removes it. It is
// idempotent.
func (n *Net) SetImpairment(netnsName, ifname string, ip *topology.ImpairPlan) error {
	h, ok := n.Handle(netnsName)
	if !ok {
		return fmt.Errorf("no namespace %s in this run", netnsName)
	}
	nlh, err := netlink.NewHandleAt(h)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", netnsName, err)
	}
	defer nlh.Close()
	link, err := nlh.LinkByName(ifname)
	if err != nil {
		return fmt.Errorf("finding %s in %s: %w", ifname, netnsName, err)
	}
	idx := link.Attrs().Index
	// Remove what is there: deleting the root qdisc deletes its child.
	// The kernel's default (noqueue on a veth) comes back.
	if err := errors.Join(removeRoot(nlh, link), n.setLoss(netnsName, ifname, 0), n.stopQueue(netnsName, ifname)); err != nil {
		return fmt.Errorf("removing the impairment of %s in %s: %w", ifname, netnsName, err)
	}
	if ip == nil {
		return nil
	}
	if lossByNft(ip) {
		if err := n.setLoss(netnsName, ifname, ip.Loss); err != nil {
			return fmt.Errorf("impairing %s in %s (%s): %w", ifname, netnsName, ip, err)
		}
	}
	tbfParent := uint32(netlink.HANDLE_ROOT)
	if needsNetem(ip) {
		var err error = unix.ENOENT
		if !n.noNetem.Load() {
			req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
			req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(idx), Handle: netemHandle, Parent: netlink.HANDLE_ROOT})
			req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("netem")))
			req.AddData(netemOptions(ip))
			err = Do(h, func() error {
				_, err := req.Execute(unix.NETLINK_ROUTE, 0)
				return err
			})
		}
		switch {
		case err == nil:
			tbfParent = netlink.MakeHandle(1, 1)
		case errors.Is(err, unix.ENOENT):
			// No sch_netem: the same impairment in this process,
			// through NFQUEUE.
			n.noNetem.Store(true)
			if err := n.startQueue(netnsName, ifname, idx, ip); err != nil {
				return fmt.Errorf("impairing %s in %s (%s) through NFQUEUE (the kernel has no sch_netem): %w", ifname, netnsName, ip, err)
			}
		default:
			return fmt.Errorf("impairing %s in %s (%s): %w", ifname, netnsName, ip, err)
		}
	}
	if ip.Rate > 0 {
		burst := uint32(max(ip.Rate/100, tbfMinBurst)) // 10 ms at the rate
		q := &netlink.Tbf{
			QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Handle: tbfHandle, Parent: tbfParent},
			Rate:       ip.Rate,
			Buffer:     netlink.Xmittime(ip.Rate, burst),
			Limit:      uint32(min(uint64(ip.Rate)*uint64(tbfLatency)/uint64(time.Second)+uint64(burst), math.MaxUint32)),
		}
		if err := nlh.QdiscAdd(q); err != nil {
			return errors.Join(fmt.Errorf("limiting %s in %s to %dbit/s: %w", ifname, netnsName, ip.Rate*8, err), removeRoot(nlh, link),
				n.setLoss(netnsName, ifname, 0), n.stopQueue(netnsName, ifname))
		}
	}
	return nil
}

// removeRoot deletes the sim's qdisc at an interface's root, if any.
func removeRoot(nlh *netlink.Handle, link netlink.Link) error {
	qs, err := nlh.QdiscList(link)
	if err != nil {
		return err
	}
	for _, q := range qs {
		a := q.Attrs()
		if a.Parent == netlink.HANDLE_ROOT && (a.Handle == netemHandle || a.Handle == tbfHandle) {
			if err := nlh.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) {
				return err
			}
		}
	}
	return nil
}

// netemOptions encodes an impairment as netem's TCA_OPTIONS.
func netemOptions(ip *topology.ImpairPlan) *nl.RtAttr {
	qopt := nl.TcNetemQopt{Limit: netemLimit, Loss: prob(ip.Loss), Duplicate: prob(ip.Duplicate)}
	if ip.Reorder > 0 {
		// As tc sets it: with gap 0 netem never reorders.
		qopt.Gap = 1
	}
	opts := nl.NewRtAttr(nl.TCA_OPTIONS, qopt.Serialize())
	opts.AddRtAttr(tcaNetemLatency64, nl.Uint64Attr(uint64(ip.Delay.Nanoseconds())))
	opts.AddRtAttr(tcaNetemJitter64, nl.Uint64Attr(uint64(ip.Jitter.Nanoseconds())))
	corr := nl.TcNetemCorr{DelayCorr: prob(ip.DelayCorrelation), LossCorr: prob(ip.LossCorrelation)}
	opts.AddRtAttr(nl.TCA_NETEM_CORR, corr.Serialize())
	if ip.Reorder > 0 {
		r := nl.TcNetemReorder{Probability: prob(ip.Reorder)}
		opts.AddRtAttr(nl.TCA_NETEM_REORDER, r.Serialize())
	}
	if ip.Corrupt > 0 {
		c := nl.TcNetemCorrupt{Probability: prob(ip.Corrupt)}
		opts.AddRtAttr(nl.TCA_NETEM_CORRUPT, c.Serialize())
	}
	if ip.Distribution == topology.DistNormal && ip.Jitter > 0 {
		opts.AddRtAttr(nl.TCA_NETEM_DELAY_DIST, normalTable())
	}
	return opts
}

// prob scales a percentage to netem's 32-bit probability.
func prob(pct float64) uint32 {
	if pct <= 0 {
		return 0
	}
	if pct >= 100 {
		return math.MaxUint32
	}
	return uint32(pct / 100 * math.MaxUint32)
}

// netemDistScale is NETEM_DIST_SCALE: table entries are in units of the
// jitter, times this.
const netemDistScale = 8192

// normalTable is netem's delay distribution table for the normal
// distribution, as iproute2's normal.dist holds it: 4096 quantiles of
// the standard normal distribution, scaled by NETEM_DIST_SCALE.
func normalTable() []byte {
	const size = 4096
	out := make([]byte, 2*size)
	for i := range size {
		p := (float64(i) + 0.5) / size
		x := math.Sqrt2 * math.Erfinv(2*p-1) * netemDistScale
		v := int16(max(math.MinInt16, min(math.MaxInt16, math.Round(x))))
		binary.NativeEndian.PutUint16(out[2*i:], uint16(v))
	}
	return out
}

// Qdiscs lists the sim's qdiscs on an interface (netem, tbf): none
// when it is not impaired (but for loss alone, see Tables). For tests.
func (n *Net) Qdiscs(netnsName, ifname string) ([]netlink.Qdisc, error) {
	nlh, err := n.Netlink(netnsName)
	if err != nil {
		return nil, err
	}
	defer nlh.Close()
	link, err := nlh.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("finding %s in %s: %w", ifname, netnsName, err)
	}
	qs, err := nlh.QdiscList(link)
	if err != nil {
		return nil, fmt.Errorf("listing qdiscs of %s in %s: %w", ifname, netnsName, err)
	}
	var out []netlink.Qdisc
	for _, q := range qs {
		if h := q.Attrs().Handle; h == netemHandle || h == tbfHandle {
			out = append(out, q)
		}
	}
	return out, nil
}

// impair lists jobs that put the plan's own impairments on every interface that has one
// (Build calls it last; a restored impair fault calls SetImpairment with
// the interface's own).
func (b *builder) impair() []func() error {
	var jobs []func() error
	for _, nd := range b.plan.Nodes {
		for _, ifc := range nd.Interfaces {
			if ifc.Impair != nil {
				jobs = append(jobs, func() error { return b.net.SetImpairment(nd.Netns, ifc.Name, ifc.Impair) })
			}
		}
	}
	return jobs
}
