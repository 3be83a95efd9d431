package ipam_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/ipam"
)

func assign(t *testing.T, e *env, c *ipam.Client, node, handle string, n4, n6 int) *ipam.Assigned {
	t.Helper()
	got, err := c.AutoAssign(e.ctx, ipam.AssignArgs{Node: node, Handle: handle, Num4: n4, Num6: n6})
	if err != nil {
		t.Fatalf("AutoAssign(%s, %s): %v", node, handle, err)
	}
	if len(got.IPv4) != n4 || len(got.IPv6) != n6 {
		t.Fatalf("AutoAssign(%s, %s) = %v, want %d IPv4 and %d IPv6", node, handle, got, n4, n6)
	}
	return got
}

func TestBlockClaimAndAffinity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(node("n1", nil), ipPool("p4", "10.0.0.0/24", 26), ipPool("p6", "fd00:1::/120", 122))
	c := e.ipam(ipam.Config{})

	first := assign(t, e, c, "n1", "h0", 1, 1)
	blocks := e.blocks()
	if len(blocks) != 2 {
		t.Fatalf("blocks after first assign: %v", slices.Collect(mapKeys(blocks)))
	}
	var b4 *api.IPAMBlock
	for cidr, b := range blocks {
		if b.Spec.Affinity != "host:n1" {
			t.Errorf("block %s affinity %q, want host:n1", cidr, b.Spec.Affinity)
		}
		if p := netip.MustParsePrefix(cidr); p.Addr().Is4() {
			b4 = b
			if !p.Contains(first.IPv4[0]) {
				t.Errorf("IPv4 %s not in the claimed block %s", first.IPv4[0], cidr)
			}
		} else if !p.Contains(first.IPv6[0]) {
			t.Errorf("IPv6 %s not in the claimed block %s", first.IPv6[0], cidr)
		}
	}
	if want := api.BlockNameFor(netip.MustParsePrefix(b4.Spec.CIDR)); b4.Name != want {
		t.Errorf("block name %s, want %s", b4.Name, want)
	}
	// The rest of the block comes from the same block, then a new one.
	for i := 1; i < 64; i++ {
		assign(t, e, c, "n1", fmt.Sprintf("h%d", i), 1, 0)
	}
	if n := len(e.blocks()); n != 2 {
		t.Fatalf("a full block's worth took %d blocks, want still 2", n)
	}
	next := assign(t, e, c, "n1", "h64", 1, 0)
	blocks = e.blocks()
	if len(blocks) != 3 {
		t.Fatalf("blocks after 65 addresses: %d, want 3", len(blocks))
	}
	for cidr, b := range blocks {
		if p := netip.MustParsePrefix(cidr); p.Contains(next.IPv4[0]) && (cidr == b4.Spec.CIDR || b.Spec.Affinity != "host:n1") {
			t.Errorf("65th address %s from %s (affinity %s), want a new block of n1", next.IPv4[0], cidr, b.Spec.Affinity)
		}
	}
	// Another node gets a block of its own.
	e.apply(node("n2", nil))
	other := assign(t, e, c, "n2", "x", 1, 0)
	for cidr, b := range e.blocks() {
		if netip.MustParsePrefix(cidr).Contains(other.IPv4[0]) && b.Spec.Affinity != "host:n2" {
			t.Errorf("n2's address %s from block %s of %s", other.IPv4[0], cidr, b.Spec.Affinity)
		}
	}
}

func TestNodeSelectorAndDisabled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	sel := ipPool("rack1", "10.1.0.0/24", 26)
	sel.Spec.NodeSelector = "rack == 'r1'"
	off := ipPool("off", "10.2.0.0/24", 26)
	off.Spec.Disabled = true
	e.apply(node("n1", map[string]string{"rack": "r1"}), node("n2", nil), sel, off)
	c := e.ipam(ipam.Config{})

	got := assign(t, e, c, "n1", "h1", 1, 0)
	if !netip.MustParsePrefix("10.1.0.0/24").Contains(got.IPv4[0]) {
		t.Errorf("n1 got %s, want from rack1", got.IPv4[0])
	}
	_, err := c.AutoAssign(e.ctx, ipam.AssignArgs{Node: "n2", Handle: "h2", Num4: 1})
	if !errors.Is(err, ipam.ErrNoPool) || !strings.Contains(err.Error(), "no enabled IPv4 pool selects node n2") {
		t.Errorf("n2: err = %v, want ErrNoPool", err)
	}
	_, err = c.AutoAssign(e.ctx, ipam.AssignArgs{Node: "n1", Handle: "h3", Num4: 1, Pools4: []string{"off"}})
	if err == nil || !strings.Contains(err.Error(), "pool off is disabled") {
		t.Errorf("disabled pool: err = %v", err)
	}
	_, err = c.AutoAssign(e.ctx, ipam.AssignArgs{Node: "ghost", Handle: "h4", Num4: 1})
	if !errors.Is(err, ipam.ErrNodeNotFound) {
		t.Errorf("unregistered node: err = %v, want ErrNodeNotFound", err)
	}
}

func TestBorrowing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Two blocks of 4 addresses in the whole pool.
	e.apply(node("n1", nil), node("n2", nil), node("n3", nil), ipPool("small", "10.0.0.0/29", 30))
	c := e.ipam(ipam.Config{})
	assign(t, e, c, "n1", "a", 1, 0)
	assign(t, e, c, "n2", "b", 1, 0)
	if n := len(e.blocks()); n != 2 {
		t.Fatalf("%d blocks, want 2 (one per node)", n)
	}

	// n3 finds no free block and borrows, leaving the affinities alone.
	got := assign(t, e, c, "n3", "c", 2, 0)
	for cidr, b := range e.blocks() {
		if b.Spec.Affinity != "host:n1" && b.Spec.Affinity != "host:n2" {
			t.Errorf("block %s affinity changed to %q", cidr, b.Spec.Affinity)
		}
	}
	allocs := e.allocations()
	for _, ip := range got.IPv4 {
		if allocs[ip] != "c" {
			t.Errorf("borrowed %s is held by %q", ip, allocs[ip])
		}
	}
	u, err := c.Usage(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	borrowed := 0
	for _, b := range u.Blocks {
		borrowed += b.Borrowed
	}
	if borrowed != 2 {
		t.Errorf("usage shows %d borrowed, want 2: %+v", borrowed, u.Blocks)
	}

	// Releasing the borrowed addresses keeps the owners' blocks.
	if _, err := c.ReleaseByHandle(e.ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.blocks()); n != 2 {
		t.Errorf("%d blocks after releasing borrowed addresses, want 2", n)
	}
}

func TestStrictAffinityForbidsBorrowing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(node("n1", nil), node("n2", nil), ipPool("tiny", "10.0.0.0/30", 30))
	strict := e.ipam(ipam.Config{StrictAffinity: true})
	assign(t, e, strict, "n1", "a", 1, 0)
	_, err := strict.AutoAssign(e.ctx, ipam.AssignArgs{Node: "n2", Handle: "b", Num4: 1})
	var ex *ipam.ExhaustedError
	if !errors.As(err, &ex) || ex.Pools[0] != "tiny" {
		t.Fatalf("n2 on a strict pool: err = %v, want exhausted", err)
	}
}

func TestReleaseByHandle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(node("n1", nil), node("gone", nil), ipPool("p", "10.0.0.0/24", 28))
	c := e.ipam(ipam.Config{})
	a := assign(t, e, c, "n1", "a", 2, 0)
	b := assign(t, e, c, "n1", "b", 1, 0)

	rel, err := c.ReleaseByHandle(e.ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a.IPv4, rel, addrOpt); diff != "" {
		t.Errorf("released (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[netip.Addr]string{b.IPv4[0]: "b"}, e.allocations(), addrOpt); diff != "" {
		t.Errorf("allocations after release (-want +got):\n%s", diff)
	}
	// Idempotent.
	for range 2 {
		rel, err = c.ReleaseByHandle(e.ctx, "a")
		if err != nil || len(rel) != 0 {
			t.Errorf("second release = %v, %v; want nothing and no error", rel, err)
		}
	}
	// An empty block stays with a node that still wants it.
	if _, err := c.ReleaseByHandle(e.ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if n := len(e.blocks()); n != 1 {
		t.Errorf("empty block of a live node: %d blocks, want 1 kept", n)
	}
	// ... but goes when its node has gone.
	g := assign(t, e, c, "gone", "g", 1, 0)
	if err := e.store.Delete(e.ctx, api.KindNode, "", "gone", ""); err != nil {
		t.Fatal(err)
	}
	if rel, err := c.ReleaseIPs(e.ctx, g.IPv4); err != nil || len(rel) != 1 {
		t.Fatalf("ReleaseIPs = %v, %v", rel, err)
	}
	for cidr, b := range e.blocks() {
		if b.Spec.Affinity == "host:gone" {
			t.Errorf("empty block %s of a gone node was kept", cidr)
		}
	}
}

func TestReleaseNodeBlocks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(node("n1", nil), ipPool("p", "10.0.0.0/24", 28))
	c := e.ipam(ipam.Config{})
	assign(t, e, c, "n1", "a", 20, 0) // two blocks: one full, one with 4
	if _, err := c.ReleaseIPs(e.ctx, []netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	got := assign(t, e, c, "n1", "b", 1, 0)
	if _, err := c.ReleaseByHandle(e.ctx, "a"); err != nil {
		t.Fatal(err)
	}
	deleted, released, err := c.ReleaseNodeBlocks(e.ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || len(released) != 1 {
		t.Fatalf("deleted %v released %v, want one each", deleted, released)
	}
	// The block still holding b's address lost its affinity, and goes with
	// b's release.
	for _, b := range e.blocks() {
		if b.Spec.Affinity != "" {
			t.Errorf("block %s still affine to %s", b.Spec.CIDR, b.Spec.Affinity)
		}
	}
	if _, err := c.ReleaseIPs(e.ctx, got.IPv4); err != nil {
		t.Fatal(err)
	}
	if n := len(e.blocks()); n != 0 {
		t.Errorf("%d blocks left, want 0", n)
	}
}

func TestExhaustion(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(node("n1", nil), ipPool("pool-a", "10.0.0.0/30", 30), ipPool("pool-b", "10.0.1.0/30", 30))
	c := e.ipam(ipam.Config{})
	assign(t, e, c, "n1", "a", 6, 0)

	// Two addresses remain; asking for three fails and takes none.
	_, err := c.AutoAssign(e.ctx, ipam.AssignArgs{Node: "n1", Handle: "b", Num4: 3})
	var ex *ipam.ExhaustedError
	if !errors.As(err, &ex) || !errors.Is(err, ipam.ErrExhausted) {
		t.Fatalf("err = %v, want *ExhaustedError", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "IPv4 pools pool-a, pool-b exhausted") {
		t.Errorf("message %q does not name the pools", msg)
	}
	if n := len(e.allocations()); n != 6 {
		t.Errorf("%d addresses allocated after the failed call, want 6 (rolled back)", n)
	}
	assign(t, e, c, "n1", "c", 1, 0)
	assign(t, e, c, "n1", "d", 1, 0)
	_, err = c.AutoAssign(e.ctx, ipam.AssignArgs{Node: "n1", Handle: "e", Num4: 1, Pools4: []string{"pool-b"}})
	if !errors.Is(err, ipam.ErrExhausted) || !strings.Contains(err.Error(), "IPv4 pool pool-b exhausted") {
		t.Errorf("err = %v, want pool-b exhausted", err)
	}
}

// TestConcurrentNodes allocates from 4 nodes at once, 50 allocations each,
// every one its own call racing the others, then releases them all at
// once: no address is handed out twice, none leaks. Each node has its own
// Client, as each host runs its own process.
func TestConcurrentNodes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clients := map[string]*ipam.Client{}
	for n := range 4 {
		clients[fmt.Sprintf("n%d", n)] = e.ipam(ipam.Config{})
	}
	conflicts := runConcurrent(t, e, 4, 50, func(node string, _ int) *ipam.Client { return clients[node] })
	t.Logf("CAS conflicts: %d", conflicts())
}

// TestConcurrentUncoordinated is the worst case: every one of the 200
// calls has a Client of its own (as CNI plugins without the IPAM lock
// file), so only compare-and-swap keeps them apart.
func TestConcurrentUncoordinated(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("slow under contention; runs without -short")
	}
	e := newEnv(t)
	// Hundreds of lost races per block: slow under the race detector.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	e.ctx = ctx
	var clients []*ipam.Client
	conflicts := runConcurrent(t, e, 4, 50, func(string, int) *ipam.Client {
		c := e.ipam(ipam.Config{MaxConflicts: 1000})
		clients = append(clients, c)
		return c
	})
	t.Logf("CAS conflicts: %d", conflicts())
}

// runConcurrent runs nodes*per AutoAssigns at once, checks the result
// against the stored blocks, releases everything at once and checks that
// nothing is left. clientFor is called before any goroutine starts.
func runConcurrent(t *testing.T, e *env, nodes, per int, clientFor func(node string, i int) *ipam.Client) (conflicts func() uint64) {
	t.Helper()
	// 2 blocks of 128 for 200 addresses from 4 nodes: the nodes race to
	// claim them, two lose and borrow from the winners, whose own
	// allocations race with theirs on the same blocks.
	e.apply(ipPool("p", "10.0.0.0/24", 25))
	type call struct {
		node, handle string
		c            *ipam.Client
		ip           netip.Addr
		err          error
	}
	var calls []*call
	seen := map[*ipam.Client]bool{}
	var all []*ipam.Client
	for n := range nodes {
		name := fmt.Sprintf("n%d", n)
		e.apply(node(name, nil))
		for i := range per {
			c := clientFor(name, i)
			if !seen[c] {
				seen[c] = true
				all = append(all, c)
			}
			calls = append(calls, &call{node: name, handle: fmt.Sprintf("%s-%d", name, i), c: c})
		}
	}
	conflicts = func() uint64 {
		var sum uint64
		for _, c := range all {
			sum += c.Stats().Conflicts
		}
		return sum
	}
	var wg sync.WaitGroup
	for _, cl := range calls {
		wg.Go(func() {
			got, err := cl.c.AutoAssign(e.ctx, ipam.AssignArgs{Node: cl.node, Handle: cl.handle, Num4: 1})
			cl.err = err
			if err == nil {
				cl.ip = got.IPv4[0]
			}
		})
	}
	wg.Wait()
	want := map[netip.Addr]string{}
	for _, cl := range calls {
		if cl.err != nil {
			t.Errorf("%s: %v", cl.handle, cl.err)
			continue
		}
		if h, dup := want[cl.ip]; dup {
			t.Errorf("%s given to %s and %s", cl.ip, h, cl.handle)
		}
		want[cl.ip] = cl.handle
	}
	if diff := cmp.Diff(want, e.allocations(), addrOpt); diff != "" {
		t.Fatalf("stored allocations differ from what was handed out (-want +got):\n%s", diff)
	}
	if len(want) != nodes*per {
		t.Fatalf("%d addresses handed out, want %d", len(want), nodes*per)
	}
	for _, cl := range calls {
		wg.Go(func() {
			if _, err := cl.c.ReleaseByHandle(e.ctx, cl.handle); err != nil {
				t.Errorf("release %s: %v", cl.handle, err)
			}
		})
	}
	wg.Wait()
	if left := e.allocations(); len(left) != 0 {
		t.Errorf("%d allocations leaked: %v", len(left), left)
	}
	return conflicts
}

func TestCheckFindsPlantedLeaks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.apply(node("n1", nil), node("doomed", nil), ipPool("p", "10.0.0.0/24", 28))
	c := e.ipam(ipam.Config{})
	attrs := func(ns, wep string) map[string]string {
		return map[string]string{ipam.AttrNamespace: ns, ipam.AttrEndpoint: wep}
	}
	assignWith := func(node, handle string, a map[string]string) netip.Addr {
		t.Helper()
		got, err := c.AutoAssign(e.ctx, ipam.AssignArgs{Node: node, Handle: handle, Num4: 1, Attrs: a})
		if err != nil {
			t.Fatal(err)
		}
		return got.IPv4[0]
	}
	wep := func(name string, ips ...netip.Addr) *api.WorkloadEndpoint {
		w := &api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.WorkloadEndpointSpec{
			Node: "n1", Orchestrator: "cni", Workload: name, Endpoint: "eth0", InterfaceName: "bf" + name,
		}}
		for _, ip := range ips {
			w.Spec.IPNetworks = append(w.Spec.IPNetworks, netip.PrefixFrom(ip, ip.BitLen()).String())
		}
		return w
	}

	healthy := assignWith("n1", "ok", attrs("default", "good"))
	leaked := assignWith("n1", "leak", attrs("default", "vanished"))
	assignWith("doomed", "d", nil)
	stray := netip.MustParseAddr("10.0.0.200")
	e.apply(wep("good", healthy), wep("stray", stray))
	if err := e.store.Delete(e.ctx, api.KindNode, "", "doomed", ""); err != nil {
		t.Fatal(err)
	}
	// An allocation without a handle, written behind IPAM's back.
	var n1Block *api.IPAMBlock
	for _, b := range e.blocks() {
		if b.Spec.Affinity == "host:n1" {
			n1Block = b
		}
	}
	ord := n1Block.Spec.Unallocated[0]
	idx := len(n1Block.Spec.Attributes)
	n1Block.Spec.Attributes = append(n1Block.Spec.Attributes, api.AllocationAttribute{})
	n1Block.Spec.Allocations[ord] = &idx
	n1Block.Spec.Unallocated = n1Block.Spec.Unallocated[1:]
	if _, err := e.store.Update(e.ctx, n1Block); err != nil {
		t.Fatal(err)
	}
	nohandle, _ := n1Block.OrdinalToIP(ord)

	problems, err := c.Check(e.ctx, ipam.CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.String())
	}
	var doomedBlock string
	for cidr, b := range e.blocks() {
		if b.Spec.Affinity == "host:doomed" {
			doomedBlock = cidr
		}
	}
	want := []string{
		fmt.Sprintf("inconsistent block %s ip %s: allocation has no handle, so nothing can release it", n1Block.Spec.CIDR, nohandle),
		fmt.Sprintf("inconsistent ip %s: workload endpoint default/stray uses the address, which is not allocated", stray),
		fmt.Sprintf("leaked block %s ip %s handle leak: workload endpoint default/vanished does not exist", n1Block.Spec.CIDR, leaked),
		fmt.Sprintf("leaked block %s ip %s handle d: allocated for node doomed, which does not exist", doomedBlock, netip.MustParsePrefix(doomedBlock).Addr()),
		fmt.Sprintf("node-gone block %s: affine to node doomed, which does not exist", doomedBlock),
	}
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
