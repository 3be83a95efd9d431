package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
	"github.com/bgpfabric/bgpfabric/internal/testport"
)

func TestParseFailsafes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		fail bool
	}{
		{"default", -1, false}, {"none", 0, false}, {"tcp:22, udp:53", 2, false},
		{"tcp:0", 0, true}, {"sctp:22", 0, true}, {"tcp", 0, true}, {"tcp:70000", 0, true},
	} {
		got, err := parseFailsafes("--f", tc.in)
		switch {
		case tc.fail && err == nil:
			t.Errorf("%q: no error", tc.in)
		case !tc.fail && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case !tc.fail && tc.n == -1 && got != nil:
			t.Errorf("%q = %v, want nil (defaults)", tc.in, got)
		case !tc.fail && tc.n >= 0 && (got == nil || len(got) != tc.n):
			t.Errorf("%q = %v, want %d failsafes", tc.in, got, tc.n)
		}
	}
}

// TestNodeCommand runs `bgpfabric node --netns NS` in-process against an
// embedded etcd: it programs the namespace, reports its status, and on
// stop leaves the routes and deletes its status.
func TestNodeCommand(t *testing.T) {
	node, wl := nstest.New(t), nstest.New(t)
	nstest.Veth(t, node, "wla", wl, "eth0")
	e := etcdtest.Start(t)
	c := e.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, _ := api.NewIPAMBlock(netip.MustParsePrefix("10.65.0.0/26"), api.HostAffinity("n1"))
	for _, r := range []api.Resource{
		&api.WorkloadEndpoint{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "a"}, Spec: api.WorkloadEndpointSpec{
			Node: "n1", Orchestrator: "cni", Workload: "a", Endpoint: "eth0", InterfaceName: "wla", IPNetworks: []string{"10.65.0.1/32"}}},
		b,
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
	httpAddr := freeLoopbackPort(t)
	root.SetArgs([]string{"--datastore", e.ClientEndpoint(), "node", "--node-name", "n1", "--netns", node.Name, "--status-ttl", "1h", "--http-addr", httpAddr})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(runCtx) }()
	defer func() {
		stop()
		<-done
	}()

	for inSync := false; !inSync; {
		select {
		case ev := <-w:
			if ev.Type != datastore.Deleted && ev.Err == nil {
				s := ev.Resource.(*api.FelixStatus).Status
				inSync = s.InSync && s.Routes == 2
			}
		case err := <-done:
			t.Fatalf("node stopped: %v\n%s", err, stderr.String())
		case <-ctx.Done():
			t.Fatalf("no in-sync status\n%s", stderr.String())
		}
	}
	routes := func() []string {
		rs, err := node.Netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rs {
			if r.Protocol == 80 && r.Dst != nil {
				out = append(out, r.Dst.String())
			}
		}
		return out
	}
	if got := strings.Join(routes(), " "); !strings.Contains(got, "10.65.0.1/32") || !strings.Contains(got, "10.65.0.0/26") {
		t.Errorf("routes of protocol 80 in %s: %s", node.Name, got)
	}

	// Health and metrics on --http-addr.
	// There is no Node resource, so the router cannot start its speaker:
	// felix is ready, the router says why it is not.
	if code, body := httpGet(t, "http://"+httpAddr+"/readyz"); code != 503 || !strings.Contains(body, "[+] felix ok") ||
		!strings.Contains(body, "[-] router: router: BGP speaker not started") {
		t.Errorf("/readyz = %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+httpAddr+"/metrics"); code != 200 || !strings.Contains(body, "bgpfabric_felix_routes 2") ||
		!strings.Contains(body, "bgpfabric_router_routes_exported 0") {
		t.Errorf("/metrics = %d, no bgpfabric_felix_routes 2 or bgpfabric_router_routes_exported 0:\n%s", code, body)
	}

	stop()
	if err := <-done; err != nil {
		t.Fatalf("node returned %v\n%s", err, stderr.String())
	}
	done <- nil // for the deferred stop
	if got := routes(); len(got) != 2 {
		t.Errorf("after a clean stop, routes of protocol 80 = %v, want both kept", got)
	}
	if _, err := c.Get(ctx, api.KindFelixStatus, "", "n1"); err == nil {
		t.Errorf("status still there after a clean stop")
	}
}

// freeLoopbackPort returns a 127.0.0.1 address whose port no other socket
// can take before the node binds it (internal/testport).
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testport.Pick(t)))
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
