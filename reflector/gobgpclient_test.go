package reflector

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// goClient is a GoBGP server used as a route-reflector client.
type goClient struct {
	s     *server.BgpServer
	local string
}

// newGoClient starts a GoBGP speaker with router id id that connects from
// local to each reflector in rrs; gr enables graceful restart (as helper
// and with a restart time of 120 s).
func newGoClient(t *testing.T, ctx context.Context, id, local string, gr bool, rrs ...netip.AddrPort) *goClient {
	t.Helper()
	s := server.NewBgpServer(server.LoggerOption(slogAdapter{goClientLog}))
	go s.Serve()
	t.Cleanup(func() { stopGoBGP(s) })
	if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: testASN, RouterId: id, ListenPort: -1}}); err != nil {
		t.Fatal(err)
	}
	for _, rr := range rrs {
		p := &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: rr.Addr().String(), PeerAsn: testASN},
			Transport: &api.Transport{LocalAddress: local, RemotePort: uint32(rr.Port())},
			Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1, HoldTime: 90, KeepaliveInterval: 30}},
		}
		if gr {
			p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: 120}
			p.AfiSafis = []*api.AfiSafi{{
				Config:            &api.AfiSafiConfig{Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}, Enabled: true},
				MpGracefulRestart: &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}},
			}}
		}
		if err := s.AddPeer(ctx, &api.AddPeerRequest{Peer: p}); err != nil {
			t.Fatal(err)
		}
	}
	return &goClient{s: s, local: local}
}

// stopGoBGP stops a GoBGP server once its sessions' goroutines are gone.
// GoBGP v3.37.0's StopBgp clears the global configuration that an
// established session's receive loop may still be reading (a data race
// the race detector reports), so every peer is deleted first, and the end
// of each established one awaited: GoBGP reports it only after that
// session's goroutines have returned.
func stopGoBGP(s *server.BgpServer) {
	defer s.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	idle := make(chan string, 1024)
	err := s.WatchEvent(ctx, &api.WatchEventRequest{Peer: &api.WatchEventRequest_Peer{}}, func(r *api.WatchEventResponse) {
		if p := r.GetPeer().GetPeer(); p.GetState().GetSessionState() == api.PeerState_IDLE {
			select {
			case idle <- p.GetConf().GetNeighborAddress():
			default:
			}
		}
	})
	if err != nil {
		return
	}
	var all []string
	established := map[string]bool{}
	_ = s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		all = append(all, p.GetConf().GetNeighborAddress())
		if p.GetState().GetSessionState() == api.PeerState_ESTABLISHED {
			established[p.GetConf().GetNeighborAddress()] = true
		}
	})
	for _, a := range all {
		_ = s.DeletePeer(ctx, &api.DeletePeerRequest{Address: a})
	}
	for len(established) > 0 {
		select {
		case a := <-idle:
			delete(established, a)
		case <-ctx.Done():
			return
		}
	}
}

// announce originates prefix with next hop nh.
func (c *goClient) announce(t *testing.T, ctx context.Context, prefix netip.Prefix, nh string) {
	t.Helper()
	nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: prefix.Addr().String(), PrefixLen: uint32(prefix.Bits())})
	origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
	nhop, _ := anypb.New(&api.NextHopAttribute{NextHop: nh})
	if _, err := c.s.AddPath(ctx, &api.AddPathRequest{Path: &api.Path{
		Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		Nlri:   nlri, Pattrs: []*anypb.Any{origin, nhop},
	}}); err != nil {
		t.Fatal(err)
	}
}

// learned is a received path in a client's RIB.
type learned struct {
	Neighbor string
	Stale    bool
}

// paths returns the received (not local) paths of prefix.
func (c *goClient) paths(ctx context.Context, prefix string) []learned {
	var out []learned
	c.s.ListPath(ctx, &api.ListPathRequest{
		TableType: api.TableType_GLOBAL,
		Family:    &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
		Prefixes:  []*api.TableLookupPrefix{{Prefix: prefix}},
	}, func(d *api.Destination) {
		for _, p := range d.Paths {
			if p.NeighborIp != "" && p.NeighborIp != "<nil>" && p.NeighborIp != "0.0.0.0" {
				out = append(out, learned{Neighbor: p.NeighborIp, Stale: p.Stale})
			}
		}
	})
	return out
}

// established counts the client's established sessions.
func (c *goClient) established(ctx context.Context) int {
	n := 0
	c.s.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State.SessionState == api.PeerState_ESTABLISHED {
			n++
		}
	})
	return n
}

// watchWithdrawals reports, on the returned channel, every withdrawal of a
// best path the client sees (a route lost at the client).
func (c *goClient) watchWithdrawals(t *testing.T, ctx context.Context) <-chan string {
	t.Helper()
	ch := make(chan string, 64)
	err := c.s.WatchEvent(ctx, &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
		Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST}}}},
		func(r *api.WatchEventResponse) {
			for _, p := range r.GetTable().GetPaths() {
				if !p.IsWithdraw {
					continue
				}
				n, err := apiutil.GetNativeNlri(p)
				if err == nil {
					select {
					case ch <- n.String():
					default:
					}
				}
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// waitFor polls cond every 50 ms until it holds or ctx ends. The GoBGP
// server offers no event for "a path from this neighbour is in the RIB
// and not stale", so the tests that read its RIB poll it.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func addrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

var _ = fmt.Sprint

var goClientLog = slog.New(slog.DiscardHandler)
