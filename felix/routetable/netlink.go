package routetable

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetlinkDataplane is the Dataplane of a real kernel, in one network
// namespace. It reads links through a *netlink.Handle, and reads and
// writes routes on its own rtnetlink socket: writes go in batches of
// thousands of messages per sendmsg, with an ACK asked only of the last
// one (the kernel handles a batch in order, inside the sendmsg, and
// answers every failure by its sequence number), which makes it several
// times faster than one round trip per route as netlink.RouteReplace and
// `ip -batch` do. It is safe for concurrent use.
type NetlinkDataplane struct {
	mu    sync.Mutex // guards conn and buf
	conn  *routeConn
	buf   []byte
	links *netlink.Handle
}

const (
	// batchBytes bounds one batch's messages (about 4,000 IPv4 routes).
	batchBytes = 256 << 10
	// errorCost is what one queued error message costs in our receive
	// buffer (skb truesize): the batch size is bounded so that the errors
	// of a whole batch fit.
	errorCost = 1024
	// drainTimeout bounds the wait for the rest of a batch's answers
	// after an overflow.
	drainTimeout = 200 * time.Millisecond
)

// NewNetlinkDataplane opens a NetlinkDataplane in the network namespace ns,
// or in the caller's when ns is netns.None(). It needs CAP_NET_ADMIN there
// to write routes.
func NewNetlinkDataplane(ns netns.NsHandle) (*NetlinkDataplane, error) {
	conn, err := dialRoute(ns)
	if err != nil {
		return nil, err
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		conn.close()
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return &NetlinkDataplane{conn: conn, links: h}, nil
}

// Close closes the sockets.
func (d *NetlinkDataplane) Close() error {
	d.links.Close()
	return d.conn.close()
}

// LinkList implements Dataplane. It does not watch ctx.
func (d *NetlinkDataplane) LinkList(ctx context.Context) ([]Link, error) {
	ls, err := d.links.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		out = append(out, Link{Name: a.Name, Index: a.Index, Up: a.Flags&net.FlagUp != 0})
	}
	return out, nil
}

// ListRoutes implements Dataplane with one filtered dump per family. When
// the kernel flags a dump as interrupted by changes, fn has seen a
// consistent part of it: ListRoutes then fails, and the caller lists again.
func (d *NetlinkDataplane) ListRoutes(ctx context.Context, table uint32, protocol uint8, fn func(KernelRoute)) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ipv4 := range []bool{true, false} {
		interrupted, err := d.dumpLocked(ctx, ipv4, table, protocol, fn)
		if errors.Is(err, syscall.ENOENT) { // the table has no routes of this family
			continue
		}
		if err != nil {
			return fmt.Errorf("listing routes of table %d: %w", table, err)
		}
		if interrupted {
			return fmt.Errorf("listing routes of table %d: %w", table, errDumpInterrupted)
		}
	}
	return nil
}

// errDumpInterrupted says that routes changed during a dump, so that it may
// have missed or repeated some (NLM_F_DUMP_INTR).
var errDumpInterrupted = errors.New("dump interrupted by changes, list again")

func (d *NetlinkDataplane) dumpLocked(ctx context.Context, ipv4 bool, table uint32, protocol uint8, fn func(KernelRoute)) (bool, error) {
	seq := d.conn.nextSeq(1)
	d.buf = appendDumpRequest(d.buf[:0], ipv4, table, protocol, seq)
	if err := d.conn.send(ctx, d.buf); err != nil {
		return false, err
	}
	var interrupted, done bool
	for !done {
		err := d.conn.recv(ctx, func(m nlMsg) error {
			if m.seq != seq {
				return nil // a late answer to something earlier
			}
			if m.flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.typ {
			case unix.NLMSG_DONE:
				done = true
				if len(m.data) >= 4 {
					if code := int32(ne.Uint32(m.data)); code < 0 {
						return syscall.Errno(-code)
					}
				}
			case unix.NLMSG_ERROR:
				done = true
				if _, err := parseAck(m); err != nil {
					return err
				}
			case unix.RTM_NEWROUTE:
				r, ok, err := parseRoute(m.data)
				if err != nil {
					return err
				}
				// The kernel filters with strict checking; older ones
				// did not.
				if ok && r.Table == table && (protocol == 0 || r.Protocol == protocol) {
					fn(r)
				}
			}
			return nil
		})
		if err != nil {
			// Read the rest of the dump, so that the next request does
			// not find it.
			if !done {
				d.drainLocked(ctx, readTimeout, func(m nlMsg) bool {
					return m.seq == seq && (m.typ == unix.NLMSG_DONE || m.typ == unix.NLMSG_ERROR)
				})
			}
			return false, err
		}
	}
	return interrupted, nil
}

// WriteRoutes implements Dataplane.
func (d *NetlinkDataplane) WriteRoutes(ctx context.Context, ops []RouteOp) []OpError {
	d.mu.Lock()
	defer d.mu.Unlock()
	maxOps := max(1, d.conn.rcvbuf/errorCost)
	var failed []OpError
	for start := 0; start < len(ops); {
		if err := ctx.Err(); err != nil {
			for i := start; i < len(ops); i++ {
				failed = append(failed, OpError{Index: i, Err: err})
			}
			break
		}
		d.buf = d.buf[:0]
		first := d.conn.seq + 1
		end, last := start, 0
		for end < len(ops) && end-start < maxOps && len(d.buf) < batchBytes {
			last = len(d.buf)
			d.buf = appendRouteMsg(d.buf, ops[end], first+uint32(end-start))
			end++
		}
		setAck(d.buf, last)
		d.conn.nextSeq(end - start)
		failed = d.writeBatchLocked(ctx, ops, start, end, first, failed)
		start = end
	}
	return failed
}

// writeBatchLocked sends ops[start:end], numbered from first, and appends
// their failures to failed.
func (d *NetlinkDataplane) writeBatchLocked(ctx context.Context, ops []RouteOp, start, end int, first uint32, failed []OpError) []OpError {
	failAll := func(from int, err error) []OpError {
		for i := from; i < end; i++ {
			failed = append(failed, OpError{Index: i, Err: err})
		}
		return failed
	}
	if err := d.conn.send(ctx, d.buf); err != nil {
		return failAll(start, err)
	}
	lastSeq := first + uint32(end-start-1)
	next := start // ops before next have their result
	for next < end {
		err := d.conn.recv(ctx, func(m nlMsg) error {
			i := start + int(m.seq-first)
			if m.typ != unix.NLMSG_ERROR || m.seq-first > lastSeq-first || i < next {
				return nil // not ours, or a late answer
			}
			valid, result := parseAck(m)
			if !valid {
				return nil
			}
			if result != nil {
				failed = append(failed, OpError{Index: i, Err: result})
			}
			// No news from the ones in between is good news: the kernel
			// answers failures, and handles the batch in order.
			next = i + 1
			return nil
		})
		if errors.Is(err, unix.ENOBUFS) {
			// Some answers were dropped: we cannot tell which ops of
			// the rest failed. Report them all; a retry sorts it out.
			failed = failAll(next, errLost)
			// The kernel queued every answer before the sendmsg
			// returned, so a short wait is enough, also when the ACK
			// itself was dropped.
			d.drainLocked(ctx, drainTimeout, func(m nlMsg) bool { return m.seq == lastSeq })
			return failed
		}
		if err != nil {
			return failAll(next, err)
		}
	}
	return failed
}

// drainLocked reads and drops answers until one satisfies until, or for at
// most timeout, so that the next request does not find them. (Later
// readers skip foreign sequence numbers anyway, but a dump left running
// makes the next one fail with EBUSY.)
func (d *NetlinkDataplane) drainLocked(ctx context.Context, timeout time.Duration, until func(nlMsg) bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for seen := false; !seen; {
		err := d.conn.recv(ctx, func(m nlMsg) error {
			seen = seen || until(m)
			return nil
		})
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			return
		}
	}
}
