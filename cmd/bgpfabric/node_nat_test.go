package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// TestNodeNATOutgoing runs `bgpfabric node` on a node namespace with a
// workload and an "internet" namespace that has no route back to the
// workload's pool: with the pool's natOutgoing false the workload cannot
// reach it; set to true, it can, and the internet sees the node's address.
func TestNodeNATOutgoing(t *testing.T) {
	node, wl, inet := nstest.New(t), nstest.New(t), nstest.New(t)
	_, wlIdx := nstest.Veth(t, node, "wla", wl, "eth0")
	extIdx, inetIdx := nstest.Veth(t, node, "ext", inet, "eth0")
	addr := func(ns *nstest.NS, idx int, cidr string) {
		t.Helper()
		l, err := ns.Netlink.LinkByIndex(idx)
		if err == nil {
			p := netip.MustParsePrefix(cidr)
			err = ns.Netlink.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}})
		}
		if err != nil {
			t.Fatalf("address %s in %s: %v", cidr, ns.Name, err)
		}
	}
	addr(node, extIdx, "192.0.2.1/24")
	addr(inet, inetIdx, "192.0.2.2/24")
	addr(wl, wlIdx, "10.65.0.1/32")
	// Calico's workload routing: default via 169.254.1.1 on the veth. The
	// host's proxy ARP answers only for addresses it routes elsewhere, and
	// this node has no default route: the neighbour is static.
	hostLink, err := node.Netlink.LinkByName("wla")
	if err != nil {
		t.Fatal(err)
	}
	if err := wl.Netlink.NeighAdd(&netlink.Neigh{LinkIndex: wlIdx, IP: net.IPv4(169, 254, 1, 1),
		HardwareAddr: hostLink.Attrs().HardwareAddr, State: netlink.NUD_PERMANENT}); err != nil {
		t.Fatal(err)
	}
	if err := wl.Netlink.RouteAdd(&netlink.Route{LinkIndex: wlIdx, Gw: net.IPv4(169, 254, 1, 1), Flags: int(netlink.FLAG_ONLINK)}); err != nil {
		t.Fatal(err)
	}

	e := etcdtest.Start(t)
	c := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, _ := api.NewIPAMBlock(netip.MustParsePrefix("10.65.0.0/26"), api.HostAffinity("n1"))
	pool := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "pool"}, Spec: api.IPPoolSpec{CIDR: "10.65.0.0/16"}}
	for _, r := range []api.Resource{
		&api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "a"}, Spec: api.WorkloadEndpointSpec{
			Node: "n1", Orchestrator: "cni", Workload: "a", Endpoint: "eth0", InterfaceName: "wla", IPNetworks: []string{"10.65.0.1/32"}}},
		b, pool,
	} {
		if _, err := c.Create(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	_, rev, err := c.List(ctx, api.KindFelixStatus, "")
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watch(ctx, api.KindFelixStatus, "", rev+1)

	var stderr bytes.Buffer
	root := newRootCmd(strings.NewReader(""), &bytes.Buffer{}, &stderr)
	root.SetArgs([]string{"--datastore", e.ClientEndpoint(), "node", "--node-name", "n1", "--netns", node.Name,
		"--acl=false", "--bgp=false", "--http-addr", ""})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("node returned %v\n%s", err, stderr.String())
		}
	}()
	for inSync := false; !inSync; {
		select {
		case ev := <-w:
			if ev.Type != datastore.Deleted && ev.Err == nil {
				s := ev.Resource.(*api.FelixStatus).Status
				inSync = s.InSync && s.Routes == 2
			}
		case err := <-done:
			done <- err
			t.Fatalf("node stopped: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no in-sync status\n%s", stderr.String())
		}
	}

	// The internet's server reports the source of each connection.
	var ln net.Listener
	if err := inet.Do(func() (err error) { ln, err = net.Listen("tcp4", "192.0.2.2:8080"); return err }); err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 64)
	served := make(chan struct{})
	go func() {
		defer close(served)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case seen <- conn.RemoteAddr().(*net.TCPAddr).IP.String():
			default:
			}
			conn.Close()
		}
	}()
	defer func() { ln.Close(); <-served }()
	dial := func(timeout time.Duration) error {
		return wl.Do(func() error {
			conn, err := net.DialTimeout("tcp4", "192.0.2.2:8080", timeout)
			if err == nil {
				conn.Close()
			}
			return err
		})
	}

	// natOutgoing false (and the status in sync means NAT was applied):
	// the reply has no route back.
	if err := dial(2 * time.Second); err == nil {
		t.Fatalf("natOutgoing false: the workload reached the internet (source %s)", <-seen)
	}

	pool.Spec.NATOutgoing = true
	if _, err := c.Apply(ctx, pool); err != nil {
		t.Fatal(err)
	}
	// No status changes with it: try until a connection succeeds.
	var derr error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if derr = dial(time.Second); derr == nil {
			break
		}
		if !errors.Is(derr, context.DeadlineExceeded) && !strings.Contains(derr.Error(), "timeout") {
			t.Logf("dial: %v", derr)
		}
	}
	if derr != nil {
		t.Fatalf("natOutgoing true: the workload never reached the internet: %v\n%s", derr, stderr.String())
	}
	if src := <-seen; src != "192.0.2.1" {
		t.Errorf("natOutgoing true: the internet saw source %s, want the node's 192.0.2.1", src)
	}
}
