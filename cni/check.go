package cni

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// Check verifies an attachment against the result of its ADD
// (prevResult): the veth pair, the container's addresses, neighbour
// entries and default routes, the host routes, and the WorkloadEndpoint.
// Any difference is an error listing every one.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	c, err := p.begin("CHECK", args)
	if err != nil {
		return err
	}
	defer c.end()
	if err := c.check(args); err != nil {
		c.log.Warn("CHECK failed", logKeyError, err)
		return err
	}
	return nil
}

func (c *call) check(args *skel.CmdArgs) error {
	if c.conf.PrevResult == nil {
		return configError("prevResult", "is required for CHECK")
	}
	w, err := newWorkload(c.conf, args.ContainerID, args.IfName, args.Args)
	if err != nil {
		return err
	}
	ips, mac, err := resultIPs(c.conf.PrevResult, args.Netns, args.IfName)
	if err != nil {
		return configError("prevResult", "%v", err)
	}
	store, err := c.connect()
	if err != nil {
		return err
	}
	var errs []error
	if err := c.dp.check(checkSpec{attachSpec: attachSpec{hostIf: w.hostIf, ifName: w.ifName, netnsPath: args.Netns, ips: ips}, contMAC: mac}); err != nil {
		errs = append(errs, err)
	}
	r, err := store.Get(c.ctx, api.KindWorkloadEndpoint, w.namespace, w.wepName)
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		errs = append(errs, fmt.Errorf("workload endpoint %s/%s does not exist", w.namespace, w.wepName))
	case err != nil:
		return cniError("reading workload endpoint", err)
	default:
		wep := r.(*api.WorkloadEndpoint)
		errs = append(errs, checkEndpoint(wep, w, ips)...)
	}
	if len(errs) > 0 {
		return types.NewError(types.ErrInternal, "CHECK: "+errors.Join(errs...).Error(), "")
	}
	return nil
}

func checkEndpoint(wep *api.WorkloadEndpoint, w *workload, ips []netip.Addr) []error {
	var errs []error
	s := wep.Spec
	if s.ContainerID != w.containerID {
		errs = append(errs, fmt.Errorf("workload endpoint %s/%s belongs to container %s", wep.Namespace, wep.Name, s.ContainerID))
	}
	if s.InterfaceName != w.hostIf || s.Node != w.node || s.Endpoint != w.ifName {
		errs = append(errs, fmt.Errorf("workload endpoint %s/%s has node %s, interface %s, endpoint %s; want %s, %s, %s",
			wep.Namespace, wep.Name, s.Node, s.InterfaceName, s.Endpoint, w.node, w.hostIf, w.ifName))
	}
	got := s.Addrs()
	slices.SortFunc(got, netip.Addr.Compare)
	want := slices.Clone(ips)
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(got, want) {
		errs = append(errs, fmt.Errorf("workload endpoint %s/%s has addresses %v, want %v", wep.Namespace, wep.Name, got, want))
	}
	return errs
}
