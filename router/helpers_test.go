package router

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
	"github.com/bgpfabric/bgpfabric/peering"
)

// fakeResources is a ResourceSource that tests drive.
type fakeResources struct {
	mu  sync.Mutex
	h   datastore.SyncHandler
	got chan struct{}
}

func newFakeResources() *fakeResources { return &fakeResources{got: make(chan struct{})} }

func (f *fakeResources) Run(ctx context.Context, h datastore.SyncHandler) error {
	f.mu.Lock()
	f.h = h
	close(f.got)
	f.mu.Unlock()
	<-ctx.Done()
	return nil
}

func (f *fakeResources) handler(t *testing.T) datastore.SyncHandler {
	t.Helper()
	select {
	case <-f.got:
	case <-time.After(5 * time.Second):
		t.Fatal("router did not start its resource source")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.h
}

func (f *fakeResources) snapshot(t *testing.T, rs ...api.Resource) {
	for _, r := range rs {
		r.Default()
	}
	f.handler(t).OnSnapshot(datastore.Snapshot{Resources: rs})
}

func (f *fakeResources) put(t *testing.T, rs ...api.Resource) {
	var evs []datastore.Event
	for _, r := range rs {
		r.Default()
		evs = append(evs, datastore.Event{Type: datastore.Modified, ID: datastore.IDOf(r), Resource: r})
	}
	f.handler(t).OnUpdates(evs)
}

func (f *fakeResources) del(t *testing.T, kind, name string) {
	f.handler(t).OnUpdates([]datastore.Event{{Type: datastore.Deleted, ID: datastore.ResourceID{Kind: kind, Name: name}}})
}

// fakeFIB is a FIBSource that tests feed.
type fakeFIB struct{ ch chan FIBBatch }

func (f fakeFIB) Watch(ctx context.Context, _ uint8, fn func(FIBBatch)) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-f.ch:
			fn(b)
		}
	}
}

// fakeStatus keeps the last status written.
type fakeStatus struct {
	mu     sync.Mutex
	last   *api.BGPStatus
	closed bool
}

func (s *fakeStatus) Put(_ context.Context, r *api.BGPStatus) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last = r
	return nil
}

func (s *fakeStatus) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *fakeStatus) get() *api.BGPStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// waitUntil waits for cond, checking it every few milliseconds: the
// router's loop runs on its own goroutine.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// A bound for failures only: generous, for a loaded CI machine.
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func node(name, ip string, labels ...string) *api.Node {
	n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.NodeSpec{BGP: &api.NodeBGPSpec{IPv4Address: ip}}}
	for i := 0; i+1 < len(labels); i += 2 {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[labels[i]] = labels[i+1]
	}
	return n
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

// renderKernel renders the fake kernel's routes of a protocol as lines.
func renderKernel(dp *routetable.Fake, proto uint8) []string {
	var out []string
	_ = dp.ListRoutes(context.Background(), routetable.TableMain, proto, func(r routetable.KernelRoute) {
		out = append(out, r.Format(func(int) string { return "" }))
	})
	slices.Sort(out)
	return out
}

func peerAddrs(f *FakeSpeaker) string {
	var s []string
	for _, p := range f.PeerConfigs() {
		s = append(s, fmt.Sprintf("%s/%d", p.Address, p.HoldTime/time.Second))
	}
	return strings.Join(s, " ")
}

func secretRef(name, key string) peering.SecretRef { return peering.SecretRef{Name: name, Key: key} }
