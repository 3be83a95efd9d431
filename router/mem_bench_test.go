package router

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
	"github.com/bgpfabric/bgpfabric/internal/heaptest"
)

// Memory per learned path in the node's process (docs/scale.md, "Routes
// in the node agent"): what the router keeps of the paths its speaker
// reports, measured as the live heap after a collection.

var ribHeapProfile = flag.String("rib.heapprofile", "", "write a heap profile of the router holding the paths of BenchmarkRouterPathMemory to this file")

// reflectorPaths are the paths a compute node of rr-2x298 learns: a
// block of each of the fabric's other nodes from each of the two
// reflectors, with the originating node's address as next hop, as
// GoBGP reports them (iBGP: no AS path, LOCAL_PREF 100). comms are the
// communities every path carries (the same for every path, as an export
// filter would add them).
func reflectorPaths(nodes int, reflectors []netip.Addr, comms []api.Community) []Received {
	rs := make([]Received, 0, nodes*len(reflectors))
	for _, rr := range reflectors {
		for i := range nodes {
			pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 65, byte(i >> 2), byte(i&3) << 6}), 26)
			nh := netip.AddrFrom4([4]byte{10, 64, byte((i + 20) >> 8), byte(i + 20)})
			// Each path its own slice, as the speaker's stream decodes
			// them.
			cs := append([]api.Community(nil), comms...)
			rs = append(rs, Received{Prefix: pfx, Peer: rr, Path: Path{
				NextHop: nh, Peer: rr, PeerAS: 64512, LocalPref: 100, Communities: cs,
				Age: time.Unix(1700000000, 0)}})
		}
	}
	return rs
}

// streamSpeaker is a PathWatcher that keeps nothing of what it sends
// (the FakePathSpeaker keeps every path, which would count here).
type streamSpeaker struct {
	*FakeSpeaker
	mu  sync.Mutex
	fns []func([]Received)
}

func (s *streamSpeaker) WatchReceived(_ context.Context, fn func([]Received)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fns = append(s.fns, fn)
	return nil
}

func (s *streamSpeaker) send(rs []Received) bool {
	s.mu.Lock()
	fns := s.fns
	s.mu.Unlock()
	for _, fn := range fns {
		fn(rs)
	}
	return len(fns) > 0
}

// countingDataplane is a kernel that keeps nothing: it counts the routes
// written and signals when want routes are in.
type countingDataplane struct {
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (d *countingDataplane) ListRoutes(context.Context, uint32, uint8, func(routetable.KernelRoute)) error {
	return nil
}

func (d *countingDataplane) WriteRoutes(_ context.Context, ops []routetable.RouteOp) []routetable.OpError {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, op := range ops {
		switch op.Kind {
		case routetable.OpAdd, routetable.OpReplace:
			d.n++
		case routetable.OpDelete:
			d.n--
		}
	}
	if d.n >= d.want && d.done != nil {
		close(d.done)
		d.done = nil
	}
	return nil
}

func (d *countingDataplane) LinkList(context.Context) ([]routetable.Link, error) { return nil, nil }

// BenchmarkRouterPathMemory: a node's router, its sessions to two
// reflectors up, gets the 600 paths of rr-2x298 (300 prefixes from each
// reflector, one community each) from its speaker and installs the 300
// routes; reported is the live heap the router holds for them
// (heap-B/path: its Adj-RIB-In, best paths, the route table's desired
// and kernel state, and the queues' buffers), from a full router with a
// kernel that keeps nothing and a speaker that keeps nothing.
func BenchmarkRouterPathMemory(b *testing.B) {
	rrs := []netip.Addr{netip.MustParseAddr("10.64.0.2"), netip.MustParseAddr("10.64.0.3")}
	const nodes = 300
	if *ribHeapProfile != "" {
		// Every allocation sampled: the router's are a few hundred KiB.
		defer func(r int) { runtime.MemProfileRate = r }(runtime.MemProfileRate)
		runtime.MemProfileRate = 1
	}
	var total float64
	for range b.N {
		total += float64(routerPathMemory(b, nodes, rrs))
	}
	b.ReportMetric(total/float64(b.N)/float64(nodes*len(rrs)), "heap-B/path")
}

func routerPathMemory(b *testing.B, nodes int, rrs []netip.Addr) uint64 {
	sp := &streamSpeaker{FakeSpeaker: NewFakeSpeaker()}
	res := newFakeResources()
	fib := fakeFIB{ch: make(chan FIBBatch, 1)}
	dp := &countingDataplane{want: nodes, done: make(chan struct{})}
	done := dp.done
	r, err := New(Config{NodeName: "n1", Resources: res, Speaker: sp, Dataplane: dp, FIB: fib,
		StatusWriteInterval: time.Hour, StatusInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			b.Errorf("Run: %v", err)
		}
	}()
	rs := []api.Resource{node("n1", "10.64.0.10/22"), meshConfig("9s")}
	for i, a := range rrs {
		as := uint32(64512)
		rs = append(rs, &api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("rr%d", i)},
			Spec: api.BGPPeerSpec{PeerIP: a.String(), ASNumber: &as}})
	}
	for _, r := range rs {
		r.Default()
	}
	<-res.got
	res.mu.Lock()
	h := res.h
	res.mu.Unlock()
	h.OnSnapshot(datastore.Snapshot{Resources: rs})
	fib.ch <- FIBBatch{Snapshot: true}
	waitFor(b, "the reflectors' sessions", func() bool { return len(sp.PeerConfigs()) == len(rrs) })
	waitFor(b, "the path watch", func() bool { return sp.send(nil) })
	before := heaptest.Live()
	// Made after the measurement starts (what the router keeps of them
	// counts, the rest is garbage by its end), and sent in batches, as
	// the speaker's stream delivers them.
	paths := reflectorPaths(nodes, rrs, []api.Community{{Global: 64512, Local1: 100}})
	for i := 0; i < len(paths); i += 64 {
		sp.send(paths[i:min(i+64, len(paths))])
	}
	paths = nil
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatal("the routes were not installed within a minute")
	}
	after := heaptest.Live()
	heaptest.WriteProfile(b, *ribHeapProfile)
	runtime.KeepAlive(r)
	return heaptest.Growth(before, after)
}

// waitFor waits for cond, checking it every few milliseconds.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPathQueueKeepsNoBurst: the received-path queue does not keep the
// room of a burst (a node's first sync: every path at once) for the rest
// of the run, in either of its two buffers.
func TestPathQueueKeepsNoBurst(t *testing.T) {
	q := newPathQueue[Received]()
	var spare []Received
	burst := make([]Received, 1000)
	q.push(burst)
	rs := q.take(spare)
	if len(rs) != len(burst) {
		t.Fatalf("took %d, want %d", len(rs), len(burst))
	}
	spare = spareQueue(rs)
	if cap(spare) > spareQueueMax {
		t.Errorf("the burst's buffer kept as the spare: cap %d", cap(spare))
	}
	q.push(burst[:1])
	rs = q.take(spare)
	if len(rs) != 1 {
		t.Fatalf("took %d, want 1", len(rs))
	}
	q.mu.Lock()
	pending := cap(q.pending)
	q.mu.Unlock()
	if pending > spareQueueMax {
		t.Errorf("the queue's pending buffer has the burst's room: cap %d", pending)
	}
	// A small buffer is reused, emptied.
	small := spareQueue(rs)
	if cap(small) == 0 || len(small) != 0 {
		t.Errorf("a small buffer not kept for reuse: len %d cap %d", len(small), cap(small))
	}
}

// TestPathModeKeepsPathsOnce: with a speaker that reports received
// paths, the router keeps them in its Adj-RIB-In only; the best paths
// are selected from it when asked, not copied beside it.
func TestPathModeKeepsPathsOnce(t *testing.T) {
	r, err := New(Config{NodeName: "n1", Resources: newFakeResources(), Speaker: NewFakePathSpeaker(),
		Dataplane: &countingDataplane{}, FIB: fakeFIB{}})
	if err != nil {
		t.Fatal(err)
	}
	l := newLoop(r, nil, 0)
	if !l.pathMode {
		t.Fatal("a PathWatcher speaker did not put the loop in path mode")
	}
	rrs := []netip.Addr{netip.MustParseAddr("10.64.0.2"), netip.MustParseAddr("10.64.0.3")}
	// Sessions to both, with no import filters.
	l.ribImport.peers = map[netip.Addr]peerImport{rrs[0]: {}, rrs[1]: {}}
	l.onReceived(reflectorPaths(3, rrs, []api.Community{{Global: 64512, Local1: 100}}))
	if len(l.best) != 0 {
		t.Errorf("%d best paths copied beside the Adj-RIB-In", len(l.best))
	}
	if got := l.bestCount(); got != 3 {
		t.Errorf("bestCount %d, want 3", got)
	}
	if len(l.importDirty) != 3 {
		t.Errorf("%d prefixes marked for the kernel, want 3", len(l.importDirty))
	}
	p := netip.MustParsePrefix("10.65.0.64/26")
	d, ok := l.bestOf(p)
	if !ok || len(d.Paths) != 2 || d.Paths[0].Peer != rrs[0] || !d.Paths[0].Best || d.Paths[1].Best {
		t.Errorf("bestOf(%s) = %+v, %v: want both reflectors' paths, the first best", p, d, ok)
	}
	// Withdrawn from one reflector, the other's path is the best; from
	// both, the prefix has none.
	l.onReceived([]Received{{Prefix: p, Peer: rrs[0], Withdrawn: true}})
	if d, ok := l.bestOf(p); !ok || len(d.Paths) != 1 || d.Paths[0].Peer != rrs[1] {
		t.Errorf("after one withdrawal bestOf = %+v, %v", d, ok)
	}
	l.onReceived([]Received{{Prefix: p, Peer: rrs[1], Withdrawn: true}})
	if _, ok := l.bestOf(p); ok || l.hasBest(p) || l.bestCount() != 2 {
		t.Errorf("after both withdrawals: best %v, count %d", ok, l.bestCount())
	}
	var n int
	for range l.bestPrefixes {
		n++
	}
	if n != 2 {
		t.Errorf("bestPrefixes yields %d, want 2", n)
	}
}
