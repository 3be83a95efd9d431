package felix

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/felix/nft"
)

// recordingNAT is a NAT that keeps what the agent last applied.
type recordingNAT struct {
	mu      sync.Mutex
	last    []string
	applied chan struct{} // size 1: something was applied
}

func (r *recordingNAT) Apply(_ context.Context, pools []nft.NATPool) error {
	var lines []string
	for _, p := range pools {
		lines = append(lines, p.CIDR.String()+map[bool]string{true: " masquerade", false: ""}[p.Masquerade])
	}
	slices.Sort(lines)
	r.mu.Lock()
	r.last = lines
	r.mu.Unlock()
	select {
	case r.applied <- struct{}{}:
	default:
	}
	return nil
}

func (r *recordingNAT) Resync() {}

// wait waits until the pools last applied are want.
func (r *recordingNAT) wait(t *testing.T, want []string) {
	t.Helper()
	ctx := testContext(t)
	for {
		r.mu.Lock()
		got := slices.Clone(r.last)
		r.mu.Unlock()
		if cmp.Equal(want, got) {
			return
		}
		select {
		case <-r.applied:
		case <-ctx.Done():
			t.Fatalf("NAT pools = %v, want %v", got, want)
		}
	}
}

// The agent gives outgoing NAT every pool with its natOutgoing, and
// follows changes and deletions.
func TestAgentFeedsNATPools(t *testing.T) {
	env := startEtcd(t)
	k := newFakeKernel()
	nat := &recordingNAT{applied: make(chan struct{}, 1)}
	cfg := k.config(t, env.client)
	cfg.NewNAT = func(netns.NsHandle) (NAT, error) { return nat, nil }
	a := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "a"}, Spec: api.IPPoolSpec{CIDR: "10.244.0.0/16", NATOutgoing: true}}
	b := &api.IPPool{ObjectMeta: api.ObjectMeta{Name: "b"}, Spec: api.IPPoolSpec{CIDR: "fd00:10::/48"}}
	env.create(t, a)
	runAgent(t, cfg)
	nat.wait(t, []string{"10.244.0.0/16 masquerade"})

	env.create(t, b)
	nat.wait(t, []string{"10.244.0.0/16 masquerade", "fd00:10::/48"})
	b.Spec.NATOutgoing = true
	env.apply(t, b)
	nat.wait(t, []string{"10.244.0.0/16 masquerade", "fd00:10::/48 masquerade"})
	env.delete(t, api.KindIPPool, "", "a")
	nat.wait(t, []string{"fd00:10::/48 masquerade"})
}
