package netbuild_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/probe"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// minRTT pings dst from ns count times and returns the shortest round
// trip: the delay the path adds, with the scheduling noise of a loaded
// machine taken out.
func minRTT(t *testing.T, ns netns.NsHandle, dst netipAddr, count int) time.Duration {
	t.Helper()
	best := time.Duration(-1)
	for range count {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r := probe.Ping(ctx, ns, dst)
		cancel()
		if !r.OK {
			t.Fatalf("ping %s: %v", dst, r.Err)
		}
		if best < 0 || r.RTT < best {
			best = r.RTT
		}
	}
	return best
}

// TestImpairDelay puts 100 ms of delay on n-1's segment port and
// measures it with real packets: n-1's pings come back ~100 ms later than
// n-2's. Removing it puts the RTT back; replacing it (as an impair fault
// does, here with a normal jitter first) takes effect. With netem in the
// kernel the delay is a netem qdisc; without (the machines this is
// developed on) it is an NFQUEUE rule and a reader in this process.
func TestImpairDelay(t *testing.T) {
	const delay = 100 * time.Millisecond
	haveNetem := kernelHasNetem(t)
	run, plan := newRun(t, 11)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	net, err := netbuild.Build(ctx, plan, run, netbuild.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	n1ns := plan.Node("n-1").Netns
	n1, _ := net.Handle(n1ns)
	n2, _ := net.Handle(plan.Node("n-2").Netns)
	n3 := plan.Node("n-3").IPv4.Addr()

	if err := net.SetImpairment(n1ns, "eth0", &topology.ImpairPlan{Delay: delay}); err != nil {
		t.Fatal(err)
	}
	checkImpairedBy(t, net, n1ns, "eth0", haveNetem)
	impaired, plain := minRTT(t, n1, n3, 5), minRTT(t, n2, n3, 5)
	t.Logf("min RTT to n-3: from n-1 (100 ms delay) %s, from n-2 %s", impaired, plain)
	// netem never sends early; the upper bound tells one delay from two
	// (it is applied to n-1's egress only).
	if impaired < delay || impaired > delay+delay*8/10 {
		t.Errorf("RTT from n-1 with a 100 ms delay on its port: %s, want ~100 ms", impaired)
	}
	if plain >= delay/2 {
		t.Errorf("RTT from n-2 (no impairment): %s", plain)
	}
	// Removed: the RTT falls back; removing twice is fine.
	for range 2 {
		if err := net.SetImpairment(n1ns, "eth0", nil); err != nil {
			t.Fatal(err)
		}
	}
	checkNotImpaired(t, net, n1ns, "eth0")
	if got := minRTT(t, n1, n3, 3); got >= delay/2 {
		t.Errorf("RTT from n-1 after the impairment was removed: %s", got)
	}
	// Replaced: 50 ms with a normal jitter of 10 ms (the kernel takes the
	// distribution table), then 200 ms.
	if err := net.SetImpairment(n1ns, "eth0", &topology.ImpairPlan{Delay: 50 * time.Millisecond, Jitter: 10 * time.Millisecond, Distribution: topology.DistNormal}); err != nil {
		t.Fatal(err)
	}
	if err := net.SetImpairment(n1ns, "eth0", &topology.ImpairPlan{Delay: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if got := minRTT(t, n1, n3, 3); got < 200*time.Millisecond || got > 360*time.Millisecond {
		t.Errorf("RTT from n-1 after replacing the impairment with 200 ms: %s", got)
	}
	checkImpairedBy(t, net, n1ns, "eth0", haveNetem)
	// Close stops the reader and removes its rule: the namespace is
	// left with nothing of the sim's.
	own, err := netns.GetFromName(n1ns)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}
	if tabs, err := tablesOf(own); err != nil || len(tabs) != 0 {
		t.Errorf("tables left in n-1 after Close: %v %v", tabs, err)
	}
}

// checkImpairedBy checks that an interface is impaired by a netem qdisc
// or, without netem, by a queue rule and a reader of this process.
func checkImpairedBy(t *testing.T, nb *netbuild.Net, ns, ifc string, netem bool) {
	t.Helper()
	qs, err := nb.Qdiscs(ns, ifc)
	if err != nil {
		t.Fatal(err)
	}
	tabs, err := nb.Tables(ns)
	if err != nil {
		t.Fatal(err)
	}
	_, reader := nb.QueueStats(ns, ifc)
	if netem {
		if len(qs) != 1 || qs[0].Type() != "netem" || reader {
			t.Fatalf("%s in %s: qdiscs %v, reader %v, want one netem and no reader", ifc, ns, qs, reader)
		}
		return
	}
	// One table per family (ip, ip6), of one name.
	if len(qs) != 0 || !reader || len(tabs) != 2 || tabs[0] != "bfsim-q-"+ifc || tabs[1] != tabs[0] {
		t.Fatalf("%s in %s without netem: qdiscs %v, tables %v, reader %v; want the queue table and a reader", ifc, ns, qs, tabs, reader)
	}
	if in := nb.QueueImpaired(); !slices.Contains(in, [2]string{ns, ifc}) {
		t.Errorf("QueueImpaired: %v, want %s %s in it", in, ns, ifc)
	}
}

// checkNotImpaired checks that nothing of an impairment is left.
func checkNotImpaired(t *testing.T, nb *netbuild.Net, ns, ifc string) {
	t.Helper()
	qs, err := nb.Qdiscs(ns, ifc)
	if err != nil || len(qs) != 0 {
		t.Errorf("qdiscs left on %s in %s: %v %v", ifc, ns, qs, err)
	}
	if tabs, err := nb.Tables(ns); err != nil || len(tabs) != 0 {
		t.Errorf("tables left in %s: %v %v", ns, tabs, err)
	}
	if _, ok := nb.QueueStats(ns, ifc); ok {
		t.Errorf("a reader is left for %s in %s", ifc, ns)
	}
	if in := nb.QueueImpaired(); slices.Contains(in, [2]string{ns, ifc}) {
		t.Errorf("QueueImpaired still lists %s %s: %v", ns, ifc, in)
	}
}

// tablesOf lists every nftables table of a namespace, through
// google/nftables directly.
func tablesOf(ns netns.NsHandle) ([]string, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return nil, err
	}
	defer c.CloseLasting()
	ts, err := c.ListTables()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, tb := range ts {
		out = append(out, tb.Name)
	}
	return out, nil
}

// kernelHasNetem asks the kernel, in a scratch namespace and through
// vishvananda/netlink rather than the code under test, whether it has
// the netem qdisc (module sch_netem).
func kernelHasNetem(t *testing.T) bool {
	t.Helper()
	ns := nstest.New(t)
	lo, err := ns.Netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	q := &netlink.Netem{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: lo.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}}
	err = ns.Netlink.QdiscAdd(q)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		t.Fatalf("adding a netem qdisc: %v", err)
	}
	return err == nil
}

// TestImpairRate limits n-1's port to 8 Mbit/s with tbf alone and sends
// 2 MB over TCP from n-1 to n-2: it takes at least ~2 s (it would take
// milliseconds unlimited). Removing the limit takes the qdisc away.
func TestImpairRate(t *testing.T) {
	const rate = 1_000_000 // bytes per second: 8mbit
	run, plan := newRunOf(t, 12, small, func(p *topology.Plan) {
		p.Node("n-1").Interfaces[0].Impair = &topology.ImpairPlan{Rate: rate}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nb, err := netbuild.Build(ctx, plan, run, netbuild.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	n1ns := plan.Node("n-1").Netns
	if qs, err := nb.Qdiscs(n1ns, "eth0"); err != nil || len(qs) != 1 || qs[0].Type() != "tbf" {
		t.Fatalf("qdiscs on n-1's eth0: %v %v, want one tbf", qs, err)
	}
	send := func() time.Duration {
		t.Helper()
		n1, _ := nb.Handle(n1ns)
		n2, _ := nb.Handle(plan.Node("n-2").Netns)
		var ln net.Listener
		if err := netbuild.Do(n2, func() error {
			var err error
			ln, err = net.Listen("tcp", ":7000")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		got := make(chan int64, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				got <- -1
				return
			}
			defer c.Close()
			n, _ := io.Copy(io.Discard, c)
			got <- n
		}()
		var c net.Conn
		if err := netbuild.Do(n1, func() error {
			var err error
			c, err = net.DialTimeout("tcp", plan.Node("n-2").IPv4.Addr().String()+":7000", 5*time.Second)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		buf := make([]byte, 2*rate)
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if n := <-got; n != int64(len(buf)) {
			t.Fatalf("received %d bytes of %d", n, len(buf))
		}
		return time.Since(start)
	}
	limited := send()
	t.Logf("2 MB at 8mbit: %s (%.2f Mbit/s)", limited, 16/limited.Seconds())
	// The bucket lets ~10 ms through at once; the rest waits for tokens.
	if limited < 1500*time.Millisecond {
		t.Errorf("2 MB through a 8 Mbit/s limit took %s, want about 2 s", limited)
	}
	if err := nb.SetImpairment(n1ns, "eth0", nil); err != nil {
		t.Fatal(err)
	}
	if qs, err := nb.Qdiscs(n1ns, "eth0"); err != nil || len(qs) != 0 {
		t.Errorf("qdiscs left after removal: %v %v", qs, err)
	}
	unlimited := send()
	t.Logf("2 MB unlimited: %s", unlimited)
	if unlimited >= limited/2 {
		t.Errorf("without the limit 2 MB took %s (with it %s)", unlimited, limited)
	}
}

// TestImpairLoss: random loss alone is an nftables rule on the egress
// hook (no netem needed): 100% loss on the ext-a - ext-b link stops every
// ping across it, 50% loses about half of 200 packets, and removing it
// takes the table away and lets everything through.
func TestImpairLoss(t *testing.T) {
	run, plan := newRunOf(t, 13, small+`    impair: {loss: 100%}
`, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nb, err := netbuild.Build(ctx, plan, run, netbuild.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer nb.Close()
	aNS, bNS := plan.Node("ext-a").Netns, plan.Node("ext-b").Netns
	a, _ := nb.Handle(aNS)
	b := plan.Node("ext-b").IPv4.Addr()
	if tabs, err := nb.Tables(aNS); err != nil || len(tabs) != 1 {
		t.Fatalf("ext-a's tables: %v %v, want its loss table", tabs, err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 2500*time.Millisecond)
	r := probe.Ping(pctx, a, b)
	pcancel()
	if r.OK {
		t.Error("ping over the link with 100% loss succeeded")
	}
	// 50% on ext-a's end only: a UDP burst of 200 datagrams loses about
	// half (binomial: 60..140 is beyond six standard deviations).
	// One answered ping first, with no loss: the neighbour entry, failed
	// under 100% loss, must be resolved again, or the burst waits in its
	// queue.
	for _, end := range []struct{ ns, ifc string }{{aNS, "eth1"}, {bNS, "eth0"}} {
		if err := nb.SetImpairment(end.ns, end.ifc, nil); err != nil {
			t.Fatal(err)
		}
	}
	minRTT(t, a, b, 1)
	if err := nb.SetImpairment(aNS, "eth1", &topology.ImpairPlan{Loss: 50}); err != nil {
		t.Fatal(err)
	}
	bh, _ := nb.Handle(bNS)
	var rx *net.UDPConn
	if err := netbuild.Do(bh, func() error {
		var err error
		rx, err = net.ListenUDP("udp", &net.UDPAddr{Port: 7001})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx net.Conn
	if err := netbuild.Do(a, func() error {
		var err error
		tx, err = net.Dial("udp", b.String()+":7001")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const sent = 200
	for i := range sent {
		if _, err := tx.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if i%20 == 19 {
			time.Sleep(time.Millisecond) // pace the burst: the loss, not a full socket buffer, must drop
		}
	}
	got := 0
	buf := make([]byte, 16)
	for {
		rx.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		if _, err := rx.Read(buf); err != nil {
			break
		}
		got++
	}
	t.Logf("50%% loss: %d of %d datagrams arrived", got, sent)
	if got < 60 || got > 140 {
		t.Errorf("with 50%% loss %d of %d datagrams arrived", got, sent)
	}
	if err := nb.SetImpairment(aNS, "eth1", nil); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{aNS, bNS} {
		if tabs, err := nb.Tables(ns); err != nil || len(tabs) != 0 {
			t.Errorf("tables left in %s: %v %v", ns, tabs, err)
		}
	}
	if got := minRTT(t, a, b, 1); got <= 0 {
		t.Errorf("ping over the healed link: %s", got)
	}
}
