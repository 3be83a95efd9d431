package fabric

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/peering"
)

// TestFiltersFailClosed: a reflector leaves out every session and range
// of a BGPPeer with filters (which its engine cannot evaluate yet), keeps
// the others, and shows the refused sessions in its status with the
// reason.
func TestFiltersFailClosed(t *testing.T) {
	var in peering.Input
	in.Add(node("rr1", "10.0.0.1/24", map[string]string{"rr": "true"}, "10.0.0.1"))
	in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "tor"}, Spec: api.BGPPeerSpec{PeerIP: "10.0.0.254", Filters: []string{"f"}}})
	in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "plain"}, Spec: api.BGPPeerSpec{PeerIP: "10.0.0.253"}})
	in.Add(&api.BGPPeer{ObjectMeta: api.ObjectMeta{Name: "racks"}, Spec: api.BGPPeerSpec{PeerPrefix: "10.1.0.0/16", Filters: []string{"f"}}})
	sessions := []peering.Session{
		{PeerAddress: netip.MustParseAddr("10.0.0.254"), Source: "tor", PeerAS: 65000, Type: api.PeerTypeGlobal},
		{PeerAddress: netip.MustParseAddr("10.0.0.253"), Source: "plain", PeerAS: 65001, Type: api.PeerTypeGlobal},
		{PeerAddress: netip.MustParseAddr("10.0.0.2"), Source: peering.SourceMesh, PeerAS: 64512, Type: api.PeerTypeMesh},
	}
	ranges := []peering.PeerRange{{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Source: "racks"}, {Prefix: netip.MustParsePrefix("10.2.0.0/16"), Source: "other"}}
	keep, keepRanges, refused, refusedRanges := refuseFiltered(sessions, ranges, filteredPeers(in, "rr1"))
	if len(keep) != 2 || keep[0].Source != "plain" || keep[1].Source != peering.SourceMesh {
		t.Errorf("kept sessions %v", keep)
	}
	if len(refused) != 1 || refused[0].Source != "tor" {
		t.Errorf("refused sessions %v", refused)
	}
	if len(keepRanges) != 1 || keepRanges[0].Source != "other" || len(refusedRanges) != 1 || refusedRanges[0].Source != "racks" {
		t.Errorf("ranges kept %v refused %v", keepRanges, refusedRanges)
	}
	ns, _, err := Neighbors(keep, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Address == netip.MustParseAddr("10.0.0.254") {
			t.Error("the filtered session is configured")
		}
	}
	st := withRefused(Status("rr1", Identity{RouterID: netip.MustParseAddr("10.0.0.1"), AS: 64512}, keep, keepRanges, nil, time.Now()),
		[]refusal{{refused[0], FiltersUnsupported}})
	if len(st.Status.Peers) != 1 || st.Status.Peers[0].PeerIP != "10.0.0.254" || st.Status.Peers[0].State != api.BGPIdle ||
		!strings.Contains(st.Status.Peers[0].LastError, "does not support yet") {
		t.Errorf("status %+v", st.Status.Peers)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("status does not validate: %v", err)
	}
}

// TestControllerRefusesFilteredPeer: through the datastore, a reflector
// never configures the session of a BGPPeer with filters that selects it
// as its node side, shows it in its BGPStatus with the reason, and
// leaves it out under RFC 8212 once the filters are gone (it is eBGP), and
// configures it with ebgpDefaultPolicy Accept; the sessions it has because
// the compute nodes' BGPPeer (with filters) selects it as their peer are
// configured.
func TestControllerRefusesFilteredPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
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
	tor := &api.BGPPeer{TypeMeta: api.TypeMeta{Kind: api.KindBGPPeer}, ObjectMeta: api.ObjectMeta{Name: "tor"},
		Spec: api.BGPPeerSpec{NodeSelector: "has(rr)", PeerIP: "10.0.0.254", ASNumber: ptrU32(65000), Filters: []string{"tor-in"}}}
	for _, r := range []api.Resource{
		node("rr1", "10.0.0.1/24", map[string]string{"rr": "true"}, "10.0.0.1"),
		node("n2", "10.0.0.2/24", map[string]string{"role": "compute"}, ""),
		// Filters of the compute nodes' side: the reflector's reverse
		// sessions do not have them, and are configured.
		&api.BGPPeer{TypeMeta: api.TypeMeta{Kind: api.KindBGPPeer}, ObjectMeta: api.ObjectMeta{Name: "to-rr"},
			Spec: api.BGPPeerSpec{NodeSelector: "role == 'compute'", PeerSelector: "has(rr)", Filters: []string{"rack-tag"}}},
		tor,
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
	waitNeighbors(t, ctx, r, []string{"10.0.0.2"})
	// waitStatus polls the reflector's BGPStatus until the ToR's entry
	// says why it is left out.
	waitStatus := func(reason string) {
		t.Helper()
		var last []api.BGPPeerStatus
		for {
			res, err := c.Get(ctx, api.KindBGPStatus, "", "rr1")
			if err == nil {
				last = res.(*api.BGPStatus).Status.Peers
				if len(last) == 2 && last[1].PeerIP == "10.0.0.254" && last[1].LastError == reason {
					return
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("BGPStatus never said %q: %+v", reason, last)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitStatus(FiltersUnsupported)
	if len(r.Neighbors()) != 1 {
		t.Errorf("neighbours %v: the filtered session is configured", r.Neighbors())
	}
	got, err := c.Get(ctx, api.KindBGPPeer, "", "tor")
	if err != nil {
		t.Fatal(err)
	}
	p := got.(*api.BGPPeer)
	p.Spec.Filters = nil
	if _, err := c.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	// Without filters, an eBGP session under RFC 8212 (the default):
	// still left out, for that reason.
	waitStatus(RFC8212Closed)
	if len(r.Neighbors()) != 1 {
		t.Errorf("neighbours %v: the eBGP session is configured under RFC 8212", r.Neighbors())
	}
	// ebgpDefaultPolicy Accept: configured.
	if _, err := c.Create(ctx, &api.BGPConfiguration{TypeMeta: api.TypeMeta{Kind: api.KindBGPConfiguration},
		ObjectMeta: api.ObjectMeta{Name: "default"}, Spec: api.BGPConfigurationSpec{EBGPDefaultPolicy: api.FilterAccept}}); err != nil {
		t.Fatal(err)
	}
	waitNeighbors(t, ctx, r, []string{"10.0.0.2", "10.0.0.254"})
}

func ptrU32(v uint32) *uint32 { return &v }
