package fabric

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/reflector"
)

func node(name, addr string, labels map[string]string, cluster string) *api.Node {
	n := &api.Node{
		TypeMeta:   api.TypeMeta{Kind: api.KindNode},
		ObjectMeta: api.ObjectMeta{Name: name, Labels: labels},
		Spec:       api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: addr, RouteReflectorClusterID: cluster}},
	}
	return n
}

// waitNeighbors polls until the reflector's neighbour addresses are want.
func waitNeighbors(t *testing.T, ctx context.Context, r *reflector.Reflector, want []string) map[string]reflector.NeighborStatus {
	t.Helper()
	for {
		got := map[string]reflector.NeighborStatus{}
		var addrs []string
		for _, n := range r.Neighbors() {
			got[n.Address] = n
			addrs = append(addrs, n.Address)
		}
		if slices.Equal(addrs, want) {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("neighbours %v, want %v", addrs, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestControllerFollowsDatastore: a reflector Node's clients come from a
// BGPPeer selector; adding a matching Node adds exactly one neighbour and
// leaves the others' sessions alone. The reflector has the lowest address,
// so every session is passive on its side and nothing is dialled (the
// node addresses are not on this machine); it listens on loopback.
func TestControllerFollowsDatastore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir, err := os.MkdirTemp("", "rrfab")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: filepath.Join(dir, "data"), Listen: "unix://" + filepath.Join(dir, "etcd.sock"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{e.ClientEndpoint()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	compute := map[string]string{"role": "compute"}
	for _, r := range []api.Resource{
		node("rr1", "10.0.0.1/24", map[string]string{"rr": "true"}, "10.0.0.1"),
		node("n2", "10.0.0.2/24", compute, ""),
		node("n3", "10.0.0.3/24", compute, ""),
		node("other", "10.0.0.9/24", map[string]string{"role": "storage"}, ""),
		&api.BGPPeer{
			TypeMeta: api.TypeMeta{Kind: api.KindBGPPeer}, ObjectMeta: api.ObjectMeta{Name: "to-rr"},
			Spec: api.BGPPeerSpec{NodeSelector: "role == 'compute'", PeerSelector: "has(rr)"},
		},
	} {
		if _, err := c.Create(ctx, r); err != nil {
			t.Fatalf("creating %s: %v", r.GetObjectMeta().Name, err)
		}
	}
	ctrl, err := New(Config{Client: c, Node: "rr1", ListenAddrs: []string{"127.0.0.1:0"}, StatusInterval: 100 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-ctrl.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	r := ctrl.Reflector()
	before := waitNeighbors(t, ctx, r, []string{"10.0.0.2", "10.0.0.3"})
	for _, n := range before {
		if !n.Client || n.ASN != 64512 {
			t.Errorf("neighbour %+v: want a client in AS 64512", n)
		}
	}

	if _, err := c.Create(ctx, node("n4", "10.0.0.4/24", compute, "")); err != nil {
		t.Fatal(err)
	}
	after := waitNeighbors(t, ctx, r, []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"})
	for _, a := range []string{"10.0.0.2", "10.0.0.3"} {
		if !after[a].Since.Equal(before[a].Since) {
			t.Errorf("neighbour %s was restarted (since %v, was %v)", a, after[a].Since, before[a].Since)
		}
	}

	// BGPStatus follows, under the lease.
	for {
		res, err := c.Get(ctx, api.KindBGPStatus, "", "rr1")
		if err == nil {
			st := res.(*api.BGPStatus)
			if len(st.Status.Peers) == 3 {
				if p := st.Status.Peers[2]; p.PeerIP != "10.0.0.4" || p.Type != api.PeerTypeReflectorClient || p.State != api.BGPActive {
					t.Errorf("status of n4: %+v", p)
				}
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("BGPStatus: %v %v", res, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
