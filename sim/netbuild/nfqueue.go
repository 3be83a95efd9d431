package netbuild

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// A userspace netem, for kernels without sch_netem: an nftables rule in
// the interface's namespace (table tablePrefix+"q-"+ifname, inet family,
// postrouting hook) hands every packet leaving the interface to an
// NFQUEUE, with the bypass flag, so that packets flow unimpaired when no
// reader is bound. A reader in the sim's process, bound to that queue
// through a netlink socket opened inside the namespace, decides each
// packet's fate as netem would: a drop verdict for a lost packet, an
// accept verdict issued at release time for a delayed one, an accept
// with a payload that has one bit flipped for a corrupted one, and a
// copy written through a raw IP socket bound to the interface for a
// duplicated one (the copy carries dupMark, goes through the queue like
// any packet and is not duplicated again). The nfnetlink_queue protocol
// is spoken here by hand (include/uapi/linux/netfilter/nfnetlink_queue.h):
// binding, copy mode, queue length and the fail-open flag, packet
// messages, verdicts.
//
// An impairment done this way lives as long as the process that applied
// it: when the reader is gone the rule's bypass lets everything through.

// nfnetlink_queue's constants.
const (
	nfnlSubsysQueue = 3

	nfqnlMsgPacket  = 0
	nfqnlMsgVerdict = 1
	nfqnlMsgConfig  = 2

	nfqaPacketHdr  = 1
	nfqaVerdictHdr = 2
	nfqaMark       = 3
	nfqaPayload    = 10
	nfqaCapLen     = 17

	nfqaCfgCmd         = 1
	nfqaCfgParams      = 2
	nfqaCfgQueueMaxlen = 3
	nfqaCfgMask        = 4
	nfqaCfgFlags       = 5

	nfqnlCfgCmdBind  = 1
	nfqnlCopyPacket  = 2
	nfqaCfgFFailOpen = 1

	nfqFlagBypass = 1 // NFQ_FLAG_BYPASS of xt_NFQUEUE

	nfDrop   = 0
	nfAccept = 1
)

// Log keys.
const (
	logKeyNetns = "netns"
	logKeyIface = "iface"
	logKeyErr   = "err"
	logKeyStats = "stats"
)

// dupMark marks the copies of duplicated packets (SO_MARK of the raw
// socket that sends them), so that the reader does not duplicate them
// again.
const dupMark = 0x0bf5d0b1

// copyRange is how much of a packet the kernel copies to the reader:
// all of it (corruption and duplication need the payload).
const copyRange = 0xffff

// kernelQueueSlack is how many packets beyond netemLimit the kernel's
// queue takes: the reader's own limit drops first, the kernel's
// fail-open (accept unimpaired) only when the reader falls behind.
const kernelQueueSlack = 64

// QueueStats counts what a reader did.
type QueueStats struct {
	Packets, Delayed, Reordered, Lost, OverLimit, Duplicated, DupFailed, Corrupted, VerdictErrors uint64
}

// queue is the reader of one impaired interface.
type queue struct {
	ns, ifname string
	num        uint16
	ip         *topology.ImpairPlan
	conn       *netlink.Conn
	raw4, raw6 int // raw sockets for duplicates, -1 when none
	log        *slog.Logger

	rng                 *rand.Rand
	lastDelay, lastLoss float64 // netem's correlation state
	held                heldHeap
	seq                 uint64
	stats               [9]atomic.Uint64
	// stopMu orders close's wake-up (a read deadline of now) with the
	// reader's own deadlines.
	stopMu   sync.Mutex
	stopped  bool
	done     chan struct{}
	stopOnce sync.Once
}

const (
	stPackets = iota
	stDelayed
	stReordered
	stLost
	stOverLimit
	stDuplicated
	stDupFailed
	stCorrupted
	stVerdictErrors
)

// held is a packet waiting for its accept verdict.
type held struct {
	at      time.Time
	seq     uint64 // ties release in arrival order
	id      uint32
	payload []byte // a corrupted packet's new payload, else nil
}

type heldHeap []held

func (h heldHeap) Len() int { return len(h) }
func (h heldHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h heldHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *heldHeap) Push(x any)   { *h = append(*h, x.(held)) }
func (h *heldHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// startQueue binds a reader to queue num of a namespace, with the
// impairment it applies, and starts it. The nft rule comes after.
func startQueue(nsFd int, ns, ifname string, num uint16, ip *topology.ImpairPlan, doInNS func(func() error) error, log *slog.Logger) (*queue, error) {
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: nsFd})
	if err != nil {
		return nil, fmt.Errorf("netfilter netlink socket in %s: %w", ns, err)
	}
	q := &queue{ns: ns, ifname: ifname, num: num, ip: ip, conn: conn, raw4: -1, raw6: -1, log: log,
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), done: make(chan struct{})}
	fail := func(err error) (*queue, error) {
		q.closeSockets()
		return nil, err
	}
	// Bursts must not overflow the socket: a packet whose message is lost
	// waits in the kernel's queue for a verdict that never comes.
	_ = conn.SetReadBuffer(8 << 20)
	_ = conn.SetOption(netlink.NoENOBUFS, true)
	if err := q.config(cfgAttr(nfqaCfgCmd, []byte{nfqnlCfgCmdBind, 0, 0, 0})); err != nil {
		return fail(fmt.Errorf("binding queue %d in %s: %w", num, ns, err))
	}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params, copyRange)
	params[4] = nfqnlCopyPacket
	if err := q.config(
		cfgAttr(nfqaCfgParams, params),
		cfgAttr(nfqaCfgQueueMaxlen, be32(netemLimit+kernelQueueSlack)),
		cfgAttr(nfqaCfgMask, be32(nfqaCfgFFailOpen)),
		cfgAttr(nfqaCfgFlags, be32(nfqaCfgFFailOpen)),
	); err != nil {
		return fail(fmt.Errorf("configuring queue %d in %s: %w", num, ns, err))
	}
	if ip.Duplicate > 0 {
		if err := doInNS(func() error {
			var err error
			if q.raw4, err = rawSocket(unix.AF_INET, ifname); err != nil {
				return err
			}
			q.raw6, err = rawSocket(unix.AF_INET6, ifname)
			return err
		}); err != nil {
			return fail(fmt.Errorf("raw sockets for duplicates on %s in %s: %w", ifname, ns, err))
		}
	}
	go q.run()
	return q, nil
}

func rawSocket(family int, ifname string) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, fmt.Errorf("raw socket: %w", err)
	}
	err = errors.Join(unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, dupMark),
		unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname))
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("raw socket options: %w", err)
	}
	return fd, nil
}

type attr struct {
	typ  uint16
	data []byte
}

func cfgAttr(typ uint16, data []byte) attr { return attr{typ, data} }

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// message builds an nfnetlink_queue message of queue q: the nfgenmsg
// header (family, version, queue number) and attributes.
func (q *queue) message(typ uint16, flags netlink.HeaderFlags, attrs ...attr) (netlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	ae.ByteOrder = binary.BigEndian
	for _, a := range attrs {
		ae.Bytes(a.typ, a.data)
	}
	b, err := ae.Encode()
	if err != nil {
		return netlink.Message{}, err
	}
	hdr := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}
	binary.BigEndian.PutUint16(hdr[2:], q.num)
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysQueue<<8 | typ), Flags: netlink.Request | flags},
		Data:   append(hdr, b...),
	}, nil
}

func (q *queue) config(attrs ...attr) error {
	m, err := q.message(nfqnlMsgConfig, netlink.Acknowledge, attrs...)
	if err != nil {
		return err
	}
	_, err = q.conn.Execute(m)
	return err
}

// verdict tells the kernel a packet's fate; payload, if not nil,
// replaces the packet.
func (q *queue) verdict(id uint32, v uint32, payload []byte) {
	hdr := make([]byte, 8)
	binary.BigEndian.PutUint32(hdr, v)
	binary.BigEndian.PutUint32(hdr[4:], id)
	attrs := []attr{{nfqaVerdictHdr, hdr}}
	if payload != nil {
		attrs = append(attrs, attr{nfqaPayload, payload})
	}
	m, err := q.message(nfqnlMsgVerdict, 0, attrs...)
	if err == nil {
		_, err = q.conn.Send(m)
	}
	if err != nil {
		q.stats[stVerdictErrors].Add(1)
	}
}

// run reads packets and releases held ones at their time, until stop:
// one goroutine, whose read deadline is the next release.
func (q *queue) run() {
	defer close(q.done)
	for {
		var deadline time.Time // none while nothing is held
		if len(q.held) > 0 {
			deadline = q.held[0].at
		}
		q.stopMu.Lock()
		if q.stopped {
			q.stopMu.Unlock()
			q.flush()
			return
		}
		_ = q.conn.SetReadDeadline(deadline)
		q.stopMu.Unlock()
		msgs, err := q.conn.Receive()
		switch {
		case err == nil:
			for _, m := range msgs {
				q.packet(m)
			}
		case errors.Is(err, os.ErrDeadlineExceeded):
		case errors.Is(err, net.ErrClosed):
			return
		default:
			// An error answer to a verdict (a packet the kernel no
			// longer holds), or an overrun: counted, not fatal.
			var oe *netlink.OpError
			if !errors.As(err, &oe) {
				// Closing the socket unbinds the queue: the rule's
				// bypass lets packets through from now on.
				q.log.Warn("reading an impairment queue; the interface is no longer impaired", logKeyNetns, q.ns, logKeyIface, q.ifname, logKeyErr, err)
				q.flush()
				q.conn.Close()
				return
			}
			q.stats[stVerdictErrors].Add(1)
		}
		q.release(time.Now())
	}
}

// release accepts the held packets due by now.
func (q *queue) release(now time.Time) {
	for len(q.held) > 0 && !q.held[0].at.After(now) {
		h := heap.Pop(&q.held).(held)
		q.verdict(h.id, nfAccept, h.payload)
	}
}

// flush accepts every held packet at once: a reader that stops lets its
// packets go rather than have the kernel drop them.
func (q *queue) flush() {
	for len(q.held) > 0 {
		h := heap.Pop(&q.held).(held)
		q.verdict(h.id, nfAccept, h.payload)
	}
}

// crandom is netem's correlated random number (get_crandom): a uniform
// number in [0,1) mixed with the last one by the correlation rho (0..1).
func (q *queue) crandom(last *float64, rho float64) float64 {
	u := q.rng.Float64()
	if rho <= 0 {
		return u
	}
	v := (1-rho)*u + rho**last
	*last = v
	return v
}

// delay is a packet's delay: the impairment's, with its jitter drawn
// from its distribution (netem's tabledist).
func (q *queue) delay() time.Duration {
	ip := q.ip
	if ip.Jitter <= 0 {
		return ip.Delay
	}
	u := q.crandom(&q.lastDelay, ip.DelayCorrelation/100)
	var x float64 // in units of the jitter
	if ip.Distribution == topology.DistNormal {
		u = min(max(u, 1e-9), 1-1e-9)
		x = math.Sqrt2 * math.Erfinv(2*u-1)
	} else {
		x = 2*u - 1
	}
	return max(0, ip.Delay+time.Duration(x*float64(ip.Jitter)))
}

// packet decides one packet's fate, in netem's order: duplication,
// loss, corruption, reordering, delay.
func (q *queue) packet(m netlink.Message) {
	if m.Header.Type != netlink.HeaderType(nfnlSubsysQueue<<8|nfqnlMsgPacket) || len(m.Data) < 4 {
		return
	}
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return
	}
	ad.ByteOrder = binary.BigEndian
	var (
		id      uint32
		haveID  bool
		mark    uint32
		payload []byte
		whole   = true
	)
	for ad.Next() {
		switch ad.Type() {
		case nfqaPacketHdr:
			if b := ad.Bytes(); len(b) >= 4 {
				id, haveID = binary.BigEndian.Uint32(b), true
			}
		case nfqaMark:
			mark = ad.Uint32()
		case nfqaPayload:
			payload = ad.Bytes()
		case nfqaCapLen:
			// A packet longer than the copy range: only part of it
			// is here, and a verdict with it would cut the packet.
			whole = false
		}
	}
	if ad.Err() != nil || !haveID {
		return
	}
	q.stats[stPackets].Add(1)
	ip := q.ip
	if !whole {
		payload = nil // neither copied nor corrupted
	}
	if ip.Duplicate > 0 && mark != dupMark && q.rng.Float64()*100 < ip.Duplicate {
		if q.duplicate(payload) {
			q.stats[stDuplicated].Add(1)
		} else {
			q.stats[stDupFailed].Add(1)
		}
	}
	if ip.Loss > 0 && q.crandom(&q.lastLoss, ip.LossCorrelation/100)*100 < ip.Loss {
		q.stats[stLost].Add(1)
		q.verdict(id, nfDrop, nil)
		return
	}
	var mangled []byte
	if ip.Corrupt > 0 && q.rng.Float64()*100 < ip.Corrupt && corrupt(payload, q.rng) {
		q.stats[stCorrupted].Add(1)
		mangled = payload
	}
	d := q.delay()
	if d <= 0 || (ip.Reorder > 0 && q.rng.Float64()*100 < ip.Reorder) {
		if d > 0 {
			q.stats[stReordered].Add(1)
		}
		q.verdict(id, nfAccept, mangled)
		return
	}
	if len(q.held) >= netemLimit {
		q.stats[stOverLimit].Add(1)
		q.verdict(id, nfDrop, nil)
		return
	}
	q.stats[stDelayed].Add(1)
	q.seq++
	heap.Push(&q.held, held{at: time.Now().Add(d), seq: q.seq, id: id, payload: mangled})
}

// corrupt flips one random bit of a packet after its IP header.
func corrupt(p []byte, rng *rand.Rand) bool {
	if len(p) < 1 {
		return false
	}
	hl := 0
	switch p[0] >> 4 {
	case 4:
		hl = int(p[0]&0x0f) * 4
	case 6:
		hl = 40
	default:
		return false
	}
	if len(p) <= hl {
		return false
	}
	i := hl + rng.IntN(len(p)-hl)
	p[i] ^= 1 << rng.IntN(8)
	return true
}

// duplicate writes a copy of an IP packet through the raw socket of its
// family, bound to the interface.
func (q *queue) duplicate(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 || q.raw4 < 0 {
			return false
		}
		sa := &unix.SockaddrInet4{}
		copy(sa.Addr[:], p[16:20])
		return unix.Sendto(q.raw4, p, 0, sa) == nil
	case 6:
		if len(p) < 40 || q.raw6 < 0 {
			return false
		}
		sa := &unix.SockaddrInet6{}
		copy(sa.Addr[:], p[24:40])
		return unix.Sendto(q.raw6, p, 0, sa) == nil
	}
	return false
}

// close stops the reader (accepting what it holds) and closes its
// sockets; the kernel unbinds the queue with the socket.
func (q *queue) close() QueueStats {
	q.stopOnce.Do(func() {
		q.stopMu.Lock()
		q.stopped = true
		_ = q.conn.SetReadDeadline(time.Now())
		q.stopMu.Unlock()
		<-q.done
		q.closeSockets()
	})
	return q.Stats()
}

func (q *queue) closeSockets() {
	q.conn.Close()
	for _, fd := range []int{q.raw4, q.raw6} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	q.raw4, q.raw6 = -1, -1
}

// Stats reads the reader's counters.
func (q *queue) Stats() QueueStats {
	g := func(i int) uint64 { return q.stats[i].Load() }
	return QueueStats{Packets: g(stPackets), Delayed: g(stDelayed), Reordered: g(stReordered), Lost: g(stLost),
		OverLimit: g(stOverLimit), Duplicated: g(stDuplicated), DupFailed: g(stDupFailed), Corrupted: g(stCorrupted),
		VerdictErrors: g(stVerdictErrors)}
}

// queueKey names an impaired interface.
type queueKey struct{ ns, ifname string }

// queueTable is the nftables table of an interface's queue rule.
func queueTable(ifname string) string { return tablePrefix + "q-" + ifname }

// startQueue impairs what leaves an interface through an NFQUEUE: the
// reader first, bound to the queue numbered as the interface's index,
// then the rule that feeds it.
func (n *Net) startQueue(ns, ifname string, ifindex int, ip *topology.ImpairPlan) error {
	h, ok := n.Handle(ns)
	if !ok {
		return fmt.Errorf("no namespace %s in this run", ns)
	}
	if ifindex <= 0 || ifindex > math.MaxUint16 {
		return fmt.Errorf("interface index %d: no queue number for it", ifindex)
	}
	num := uint16(ifindex)
	log := n.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n.qmu.Lock()
	defer n.qmu.Unlock()
	q, err := startQueue(int(h), ns, ifname, num, ip, func(fn func() error) error { return Do(h, fn) }, log)
	if err != nil {
		return err
	}
	if err := n.queueRule(ns, ifname, num); err != nil {
		q.close()
		return errors.Join(err, n.removeTables(ns, queueTable(ifname)))
	}
	if n.queues == nil {
		n.queues = map[queueKey]*queue{}
	}
	n.queues[queueKey{ns, ifname}] = q
	return nil
}

// queueRule puts the rule oifname IFNAME queue num NUM bypass into ip
// and ip6 tables of its own, at postrouting, after NAT. The kernels this
// was written on have no nft_queue expression but have the xtables
// NFQUEUE target, which nftables runs through nft_compat: the rule is
// the xtables target, revision 3 (struct xt_NFQ_info_v3: queue number,
// number of queues, flags).
func (n *Net) queueRule(ns, ifc string, num uint16) error {
	c, err := n.conn(ns)
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	info := make(xt.Unknown, 8) // XT_ALIGN(6)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	binary.NativeEndian.PutUint16(info[4:], nfqFlagBypass)
	accept := nftables.ChainPolicyAccept
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		t := c.AddTable(&nftables.Table{Family: fam, Name: queueTable(ifc)})
		ch := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityRef(300), Policy: &accept})
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: concat(ifname(expr.MetaKeyOIFNAME, ifc),
			[]expr.Any{&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}})})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("queue rule for %s in %s: %w", ifc, ns, err)
	}
	return nil
}

// stopQueue removes an interface's queue rule and stops its reader, if
// it has one.
func (n *Net) stopQueue(ns, ifname string) error {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	q := n.queues[queueKey{ns, ifname}]
	// The table may be a crashed process's: removed all the same.
	err := n.removeTables(ns, queueTable(ifname))
	if q != nil {
		q.close()
		delete(n.queues, queueKey{ns, ifname})
	}
	return err
}

// stopQueues stops every reader of the net, rules first.
func (n *Net) stopQueues() error {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	var errs []error
	for k, q := range n.queues {
		if err := n.removeTables(k.ns, queueTable(k.ifname)); err != nil {
			errs = append(errs, fmt.Errorf("removing the queue rule of %s in %s: %w", k.ifname, k.ns, err))
		}
		st := q.close()
		if n.log != nil {
			n.log.Debug("impairment reader stopped", logKeyNetns, k.ns, logKeyIface, k.ifname, logKeyStats, st)
		}
		delete(n.queues, k)
	}
	return errors.Join(errs...)
}

// QueueStats returns the counters of the reader impairing an interface
// through NFQUEUE; false when it has none (no impairment, or netem).
func (n *Net) QueueStats(ns, ifname string) (QueueStats, bool) {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	q, ok := n.queues[queueKey{ns, ifname}]
	if !ok {
		return QueueStats{}, false
	}
	return q.Stats(), true
}

// QueueImpaired lists the interfaces (namespace, name) that this
// process impairs through NFQUEUE: their impairment ends with it.
func (n *Net) QueueImpaired() [][2]string {
	n.qmu.Lock()
	defer n.qmu.Unlock()
	var out [][2]string
	for k := range n.queues {
		out = append(out, [2]string{k.ns, k.ifname})
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
	return out
}
