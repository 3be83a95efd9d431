package cni_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/cni"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// outageStore stops etcd just before the plugin writes the workload
// endpoint, the last step of ADD, and starts it again after the call's
// timeout: by then the addresses are allocated and the veth exists, and
// all of it must be undone.
type outageStore struct {
	cni.Store
	f        *fabric
	restarts chan error
}

func (s *outageStore) Create(ctx context.Context, r api.Resource) (api.Resource, error) {
	if _, ok := r.(*api.WorkloadEndpoint); ok && s.restarts != nil {
		s.f.etcd.stop()
		restarts := s.restarts
		s.restarts = nil
		time.AfterFunc(3*time.Second, func() { restarts <- s.f.etcd.start() })
	}
	return s.Store.Create(ctx, r)
}

func TestAddRollsBackWhenDatastoreDiesMidway(t *testing.T) {
	f := newFabric(t)
	cont, rt := f.container("midway1")
	restarts := make(chan error, 1)
	p := &cni.Plugin{
		Stdout: &bytes.Buffer{},
		HostNS: f.host.Handle, // in-process: the host side goes into f.host
		Connect: func(ctx context.Context, _ *cni.NetConf) (cni.Store, func(), error) {
			c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{f.etcd.endpoint()}, DialTimeout: 2 * time.Second})
			if err != nil {
				return nil, nil, err
			}
			return &outageStore{Store: c, f: f, restarts: restarts}, func() { c.Close() }, nil
		},
	}
	conf := map[string]any{"type": "bgpfabric-cni"}
	for k, v := range f.conf {
		conf[k] = v
	}
	conf["timeout"] = "2s"
	stdin, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Add(&skel.CmdArgs{ContainerID: rt.ContainerID, Netns: rt.NetNS, IfName: rt.IfName, StdinData: stdin})
	var te *types.Error
	if !errors.As(err, &te) || te.Code != types.ErrTryAgainLater {
		t.Fatalf("ADD with etcd dying midway: %v, want code 11", err)
	}
	if err := <-restarts; err != nil {
		t.Fatal(err)
	}
	if got := links(t, f.host); len(got) != 0 {
		t.Errorf("host links left: %v", got)
	}
	if got := links(t, cont); len(got) != 0 {
		t.Errorf("container links left: %v", got)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations left: %v", a)
	}
	if n := len(f.endpoints()); n != 0 {
		t.Errorf("%d endpoints left", n)
	}
}

// TestAddRollsBackWhenVethFails: the container already has an eth0, so
// the veth cannot be created after the addresses were allocated.
func TestAddRollsBackWhenVethFails(t *testing.T) {
	f := newFabric(t)
	cont, rt := f.container("clash1")
	// An eth0 in the container: a veth whose other end is in the host
	// namespace under a name that is not the plugin's.
	vethInto(t, f, cont)
	list := f.confList(nil)
	c := f.cni()
	err := f.inHost(func() error { _, err := c.AddNetworkList(f.ctx, list, rt); return err })
	if err == nil {
		t.Fatal("ADD into a container that has eth0 already succeeded")
	}
	if got := links(t, f.host); len(got) != 1 || got[0] != "clash-host" {
		t.Errorf("host links: %v, want only the test's own", got)
	}
	if a := f.allocations(); len(a) != 0 {
		t.Errorf("allocations left: %v", a)
	}
	if n := len(f.endpoints()); n != 0 {
		t.Errorf("%d endpoints left", n)
	}
	// The runtime cleans up a failed ADD with a DEL: the eth0 that was
	// there before, not the plugin's, stays.
	if err := f.inHost(func() error { return c.DelNetworkList(f.ctx, list, rt) }); err != nil {
		t.Fatalf("DEL after the failed ADD: %v", err)
	}
	if got := links(t, cont); len(got) != 1 || got[0] != "eth0" {
		t.Errorf("container links after DEL: %v, want the eth0 that was there before", got)
	}
}

// failingEndpointStore fails every write of a WorkloadEndpoint.
type failingEndpointStore struct{ cni.Store }

var errInjected = errors.New("injected endpoint write failure")

func (s failingEndpointStore) Create(ctx context.Context, r api.Resource) (api.Resource, error) {
	if _, ok := r.(*api.WorkloadEndpoint); ok {
		return nil, errInjected
	}
	return s.Store.Create(ctx, r)
}

// TestRollbackReleasesOnlyItsOwnAddresses: two ADDs of one container share
// the IPAM handle. The second one's rollback must release the address it
// allocated, not the first one's.
func TestRollbackReleasesOnlyItsOwnAddresses(t *testing.T) {
	f := newFabric(t)
	cont, rt := f.container("twice1")
	list := f.confList(nil)
	ip1 := addIP(t, f, f.cni(), list, rt)
	handle := cni.HandleFor("bgpfabric", "twice1", "eth0")
	// The container lost its eth0 (another plugin, an operator): a
	// second ADD goes ahead, and fails at the endpoint write.
	eth0, err := cont.Netlink.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := cont.Netlink.LinkDel(eth0); err != nil {
		t.Fatal(err)
	}
	p := &cni.Plugin{
		Stdout: &bytes.Buffer{},
		HostNS: f.host.Handle,
		Connect: func(ctx context.Context, _ *cni.NetConf) (cni.Store, func(), error) {
			c, err := datastore.New(ctx, datastore.Config{Endpoints: []string{f.etcd.endpoint()}, DialTimeout: 5 * time.Second})
			if err != nil {
				return nil, nil, err
			}
			return failingEndpointStore{c}, func() { c.Close() }, nil
		},
	}
	conf := map[string]any{"type": "bgpfabric-cni"}
	for k, v := range f.conf {
		conf[k] = v
	}
	stdin, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Add(&skel.CmdArgs{ContainerID: rt.ContainerID, Netns: rt.NetNS, IfName: rt.IfName, StdinData: stdin})
	if err == nil || !strings.Contains(err.Error(), errInjected.Error()) {
		t.Fatalf("second ADD: %v, want the injected failure", err)
	}
	if a := f.allocations(); len(a) != 1 || a[ip1] != handle {
		t.Errorf("allocations after the second ADD's rollback: %v, want only the first ADD's %s", a, ip1)
	}
	if got := links(t, cont); len(got) != 0 {
		t.Errorf("container links after the rollback: %v", got)
	}
}
