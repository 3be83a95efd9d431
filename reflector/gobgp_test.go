package reflector

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"google.golang.org/protobuf/types/known/anypb"
)

// slogAdapter is GoBGP's logger on slog.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) log(level slog.Level, msg string, f gobgplog.Fields) {
	args := make([]any, 0, 2*len(f))
	for k, v := range f {
		args = append(args, k, v)
	}
	a.l.Log(context.Background(), level, msg, args...)
}
func (a slogAdapter) Panic(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a slogAdapter) Fatal(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a slogAdapter) Error(msg string, f gobgplog.Fields) { a.log(slog.LevelError, msg, f) }
func (a slogAdapter) Warn(msg string, f gobgplog.Fields)  { a.log(slog.LevelWarn, msg, f) }
func (a slogAdapter) Info(msg string, f gobgplog.Fields)  { a.log(slog.LevelInfo, msg, f) }
func (a slogAdapter) Debug(msg string, f gobgplog.Fields) { a.log(slog.LevelDebug, msg, f) }
func (a slogAdapter) SetLevel(gobgplog.LogLevel)          {}
func (a slogAdapter) GetLevel() gobgplog.LogLevel         { return gobgplog.InfoLevel }

// TestGoBGPClients: GoBGP speakers as route-reflector clients on
// 127.0.0.x each announce a prefix; each must receive every other's with
// ORIGINATOR_ID and CLUSTER_LIST set and NEXT_HOP unchanged.
func TestGoBGPClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs GoBGP clients: not run with -short")
	}
	const n = 3
	var addrs []string
	for i := range n {
		addrs = append(addrs, fmt.Sprintf("127.0.0.%d", 2+i))
	}
	_, raddr := startReflector(t, testConfig(addrs...))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type seen struct{ NextHop, Originator, Clusters string }
	var mu sync.Mutex
	got := make([]map[string]seen, n)
	changed := make(chan struct{}, 1)
	for i := range n {
		s := server.NewBgpServer(server.LoggerOption(slogAdapter{slog.New(slog.DiscardHandler)}))
		go s.Serve()
		t.Cleanup(func() { stopGoBGP(s) })
		id := fmt.Sprintf("10.0.0.%d", 2+i)
		if err := s.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{Asn: testASN, RouterId: id, ListenPort: -1}}); err != nil {
			t.Fatal(err)
		}
		got[i] = map[string]seen{}
		err := s.WatchEvent(ctx, &api.WatchEventRequest{Table: &api.WatchEventRequest_Table{
			Filters: []*api.WatchEventRequest_Table_Filter{{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true}}}},
			func(r *api.WatchEventResponse) {
				for _, p := range r.GetTable().GetPaths() {
					if p.IsWithdraw || p.NeighborIp == "<nil>" || p.NeighborIp == "" {
						continue
					}
					attrs, _ := apiutil.GetNativePathAttributes(p)
					var sn seen
					for _, a := range attrs {
						switch v := a.(type) {
						case *bgp.PathAttributeNextHop:
							sn.NextHop = v.Value.String()
						case *bgp.PathAttributeOriginatorId:
							sn.Originator = v.Value.String()
						case *bgp.PathAttributeClusterList:
							sn.Clusters = fmt.Sprint(v.Value)
						}
					}
					nlri, err := apiutil.GetNativeNlri(p)
					if err != nil {
						continue
					}
					mu.Lock()
					got[i][nlri.String()] = sn
					mu.Unlock()
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			})
		if err != nil {
			t.Fatal(err)
		}
		err = s.AddPeer(ctx, &api.AddPeerRequest{Peer: &api.Peer{
			Conf:      &api.PeerConf{NeighborAddress: "127.0.0.1", PeerAsn: testASN},
			Transport: &api.Transport{LocalAddress: addrs[i], RemotePort: uint32(raddr.Port())},
			Timers:    &api.Timers{Config: &api.TimersConfig{ConnectRetry: 1}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		nlri, _ := anypb.New(&api.IPAddressPrefix{Prefix: fmt.Sprintf("10.%d.0.0", 100+i), PrefixLen: 24})
		origin, _ := anypb.New(&api.OriginAttribute{Origin: 0})
		nh, _ := anypb.New(&api.NextHopAttribute{NextHop: fmt.Sprintf("192.0.2.%d", 2+i)})
		if _, err := s.AddPath(ctx, &api.AddPathRequest{Path: &api.Path{
			Family: &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST},
			Nlri:   nlri, Pattrs: []*anypb.Any{origin, nh},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]map[string]seen, n)
	for i := range n {
		want[i] = map[string]seen{}
		for j := range n {
			if j != i {
				want[i][fmt.Sprintf("10.%d.0.0/24", 100+j)] = seen{
					NextHop: fmt.Sprintf("192.0.2.%d", 2+j), Originator: fmt.Sprintf("10.0.0.%d", 2+j), Clusters: "[10.255.255.1]"}
			}
		}
	}
	for {
		mu.Lock()
		d := cmp.Diff(want, got)
		mu.Unlock()
		if d == "" {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("routes at the GoBGP clients (-want +got):\n%s", d)
		}
	}
}
