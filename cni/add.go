package cni

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/ipam"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/k8slabels"
)

// Add attaches a container: addresses from IPAM, the veth, the
// attachment record, the WorkloadEndpoint. If any step fails, the steps
// done so far are undone (releasing the addresses retries until the
// datastore answers, within rollbackTimeout), so that a failed ADD leaves
// nothing behind. The undo touches only what this call made: the
// addresses it allocated (not others under the same handle), the host
// interface it created (by index and MAC), the endpoint it wrote.
//
// An ADD for a container that has CNI_IFNAME already allocates nothing:
// if the interface is the healthy attachment of this container (the
// endpoint record says so and the kernel matches it, as CHECK verifies),
// the answer is the same result again; otherwise it fails and leaves the
// interface alone.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	c, err := p.begin("ADD", args)
	if err != nil {
		return err
	}
	defer c.end()
	res, err := c.add(args)
	if err != nil {
		c.log.Error("ADD failed", logKeyError, err)
		return err
	}
	return res.PrintTo(p.Stdout)
}

func (c *call) add(args *skel.CmdArgs) (types.Result, error) {
	w, err := newWorkload(c.conf, args.ContainerID, args.IfName, args.Args)
	if err != nil {
		return nil, err
	}
	c.log = c.log.With(logKeyWorkload, w.namespace+"/"+w.name)
	// Before anything else: refuse the host's namespace; and a repeated
	// ADD gets its answer without a change to anything.
	exists, err := c.dp.containerHas(args.Netns, w.ifName)
	if err != nil {
		return nil, cniError("", err)
	}
	// A pod's labels and addressing come from the API server, before
	// anything is allocated: without it, no unlabelled endpoint.
	var pa podAddressing
	if !exists && c.conf.Kubernetes != nil && w.orchestrator == OrchestratorK8s {
		if pa, err = c.readPod(w); err != nil {
			return nil, err
		}
	}
	store, err := c.connect()
	if err != nil {
		return nil, err
	}
	if exists {
		return c.repeatedAdd(store, w, args.Netns)
	}
	if err := ensureProfile(c.ctx, store, w.profile); err != nil {
		return nil, cniError("creating profile "+w.profile, err)
	}

	var undo []func(context.Context) error
	fail := func(what string, err error) error {
		rctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
		defer cancel()
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](rctx); uerr != nil {
				errs = append(errs, uerr)
			}
		}
		if len(errs) > 0 {
			c.log.Error("rollback incomplete", logKeyError, errors.Join(errs...))
			err = fmt.Errorf("%w (rollback incomplete: %w)", err, errors.Join(errs...))
		} else {
			c.log.Info("rolled back", logKeyError, err)
		}
		return cniError(what, err)
	}

	ic, err := ipam.New(ipam.Config{Store: store, Logger: c.log})
	if err != nil {
		return nil, err
	}
	ips, err := c.allocate(ic, store, w, pa)
	if err != nil {
		// Both ways allocate all or nothing.
		return nil, cniError("allocating addresses", err)
	}
	c.log.Debug("allocated", logKeyIPs, ips, logKeyHandle, w.handle)
	undo = append(undo, func(ctx context.Context) error {
		return retry(ctx, func(ctx context.Context) error {
			_, err := ic.ReleaseIPsOfHandle(ctx, ips, w.handle)
			return err
		})
	})

	spec := attachSpec{hostIf: w.hostIf, ifName: w.ifName, netnsPath: args.Netns, mtu: c.conf.MTU, ips: ips}
	att, err := c.dp.setup(spec) // removes its own veth on failure
	if err != nil {
		return nil, fail("setting up the veth", err)
	}
	undo = append(undo, func(context.Context) error { return c.dp.removeHost(w.hostIf, att) })

	wep := buildEndpoint(w, ips, att)
	if err := c.records().save(newRecord(w, args.Netns, att, wep.Spec.IPNetworks)); err != nil {
		return nil, fail("recording the attachment", err)
	}
	undo = append(undo, func(context.Context) error { return c.records().remove(w.handle) })

	// A write that timed out may still have happened; undo deletes only
	// the endpoint this call wrote (this container, these addresses).
	undo = append(undo, func(ctx context.Context) error {
		return retry(ctx, func(ctx context.Context) error {
			return deleteOwnEndpoint(ctx, store, wep)
		})
	})
	if err := writeEndpoint(c.ctx, store, wep); err != nil {
		return nil, fail("writing workload endpoint", err)
	}
	c.log.Info("added", logKeyIPs, ips, logKeyIface, w.hostIf)
	return buildResult(c.conf, w, args.Netns, ips, att)
}

// allocate allocates the workload's addresses: the pod's fixed addresses
// (AnnotationIPAddrs), or one per family from the pools that the pod's
// annotations or else the configuration name.
func (c *call) allocate(ic *ipam.Client, store Store, w *workload, pa podAddressing) ([]netip.Addr, error) {
	attrs := map[string]string{ipam.AttrNamespace: w.namespace, ipam.AttrEndpoint: w.wepName, ipam.AttrWorkload: w.name}
	if len(pa.fixed) > 0 {
		unlock := c.lockIPAM()
		defer unlock()
		err := ic.AssignIPs(c.ctx, ipam.AssignIPArgs{Node: w.node, Handle: w.handle, IPs: pa.fixed, Attrs: attrs})
		if err != nil {
			return nil, fmt.Errorf("pod annotation %s: %w", AnnotationIPAddrs, err)
		}
		return slices.Clone(pa.fixed), nil
	}
	pools4, pools6 := c.conf.IPv4Pools, c.conf.IPv6Pools
	assign4, assign6 := c.conf.assign4, c.conf.assign6
	var err error
	if pa.pools4 != nil {
		if pools4, err = resolvePools(c.ctx, store, AnnotationIPv4Pools, pa.pools4); err != nil {
			return nil, err
		}
		assign4 = true
	}
	if pa.pools6 != nil {
		if pools6, err = resolvePools(c.ctx, store, AnnotationIPv6Pools, pa.pools6); err != nil {
			return nil, err
		}
		assign6 = true
	}
	unlock := c.lockIPAM()
	assigned, err := ic.AutoAssign(c.ctx, ipam.AssignArgs{
		Node: w.node, Handle: w.handle, Num4: boolInt(assign4), Num6: boolInt(assign6),
		Pools4: pools4, Pools6: pools6, Attrs: attrs,
	})
	unlock()
	if err != nil {
		if pa.pools4 != nil || pa.pools6 != nil {
			err = fmt.Errorf("pools of the pod's annotations %v %v: %w", pa.pools4, pa.pools6, err)
		}
		return nil, err
	}
	return assigned.All(), nil
}

// readPod reads the workload's pod from the API server and sets the
// workload's labels from it (the rules kube-controllers applies,
// k8slabels.Pod); it returns what the pod's annotations ask of IPAM. An
// unreachable API server is "try again later" (code 11).
func (c *call) readPod(w *workload) (podAddressing, error) {
	k, err := loadKubeconfig(c.conf.Kubernetes.Kubeconfig)
	if err != nil {
		return podAddressing{}, err
	}
	defer k.Close()
	p, err := getPod(c.ctx, k, w.namespace, w.name)
	if err != nil {
		return podAddressing{}, err
	}
	labels, dropped := k8slabels.Pod(p.Metadata.Labels, p.Spec.ServiceAccountName)
	if len(dropped) > 0 {
		c.log.Warn("pod labels with a reserved or invalid key are not copied to its endpoint", logKeyLabels, dropped)
	}
	w.labels = labels
	pa, err := parseAnnotations(p.Metadata.Annotations)
	if err != nil {
		return podAddressing{}, types.NewError(types.ErrInternal, fmt.Sprintf("pod %s/%s: %v", w.namespace, w.name, err), "")
	}
	return pa, nil
}

// repeatedAdd answers an ADD for a container whose CNI_IFNAME exists: the
// same result if it is this container's healthy attachment, else an
// error. Either way nothing is allocated, changed or removed.
func (c *call) repeatedAdd(store Store, w *workload, netnsPath string) (types.Result, error) {
	exists := fmt.Sprintf("interface %s already exists in %s", w.ifName, netnsPath)
	r, err := store.Get(c.ctx, api.KindWorkloadEndpoint, w.namespace, w.wepName)
	if errors.Is(err, datastore.ErrNotFound) {
		return nil, types.NewError(types.ErrInternal, exists+", and workload endpoint "+w.namespace+"/"+w.wepName+" does not exist: not this plugin's attachment, or a broken one (DEL the container first)", "")
	}
	if err != nil {
		return nil, cniError("reading workload endpoint", err)
	}
	wep, ok := r.(*api.WorkloadEndpoint)
	if !ok {
		return nil, fmt.Errorf("%s/%s: stored value is a %T", w.namespace, w.wepName, r)
	}
	ips := wep.Spec.Addrs()
	errs := checkEndpoint(wep, w, ips)
	if err := c.checkAllocated(store, w.handle, ips); err != nil {
		errs = append(errs, err)
	}
	if err := c.dp.check(checkSpec{attachSpec: attachSpec{hostIf: w.hostIf, ifName: w.ifName, netnsPath: netnsPath, ips: ips}, contMAC: wep.Spec.MAC}); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, types.NewError(types.ErrInternal, exists+" and is not a healthy attachment of this container (DEL it first): "+errors.Join(errs...).Error(), "")
	}
	att, err := c.dp.current(w.hostIf, netnsPath, w.ifName)
	if err != nil {
		return nil, cniError("reading the attachment", err)
	}
	c.log.Info("repeated ADD of an existing attachment", logKeyIPs, ips, logKeyIface, w.hostIf)
	return buildResult(c.conf, w, netnsPath, ips, att)
}

// checkAllocated fails unless IPAM holds exactly ips for handle: an
// attachment whose addresses were released is not healthy (they may be
// someone else's by now).
func (c *call) checkAllocated(store Store, handle string, ips []netip.Addr) error {
	ic, err := ipam.New(ipam.Config{Store: store, Logger: c.log})
	if err != nil {
		return err
	}
	all, err := ic.Allocations(c.ctx)
	if err != nil {
		return fmt.Errorf("listing allocations: %w", err)
	}
	var held []netip.Addr
	for _, a := range all {
		if a.Handle == handle {
			held = append(held, a.IP)
		}
	}
	want := slices.Clone(ips)
	slices.SortFunc(held, netip.Addr.Compare)
	slices.SortFunc(want, netip.Addr.Compare)
	if !slices.Equal(held, want) {
		return fmt.Errorf("IPAM holds %v for handle %s, the endpoint has %v", held, handle, want)
	}
	return nil
}

// deleteOwnEndpoint deletes wep's record if it is still the one written
// from wep: the same container and addresses (a rollback must not delete
// the endpoint of another call for the same name).
func deleteOwnEndpoint(ctx context.Context, s Store, wep *api.WorkloadEndpoint) error {
	for range 5 {
		r, err := s.Get(ctx, api.KindWorkloadEndpoint, wep.Namespace, wep.Name)
		if errors.Is(err, datastore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		got, ok := r.(*api.WorkloadEndpoint)
		if !ok || got.Spec.ContainerID != wep.Spec.ContainerID || !slices.Equal(got.Spec.IPNetworks, wep.Spec.IPNetworks) {
			return nil
		}
		err = s.Delete(ctx, api.KindWorkloadEndpoint, wep.Namespace, wep.Name, got.ResourceVersion)
		if err == nil || errors.Is(err, datastore.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, datastore.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("workload endpoint %s/%s keeps changing under us", wep.Namespace, wep.Name)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ensureProfile creates the namespace's profile, allowing everything in
// and out, unless it exists (Calico's Kubernetes namespace profiles: the
// default for endpoints that no policy selects).
func ensureProfile(ctx context.Context, s Store, name string) error {
	if _, err := s.Get(ctx, api.KindProfile, "", name); err == nil {
		return nil
	} else if !errors.Is(err, datastore.ErrNotFound) {
		return err
	}
	p := &api.Profile{ObjectMeta: api.ObjectMeta{Name: name}, Spec: api.ProfileSpec{
		Ingress: []api.Rule{{Action: api.Allow}},
		Egress:  []api.Rule{{Action: api.Allow}},
	}}
	if _, err := s.Create(ctx, p); err != nil && !errors.Is(err, datastore.ErrAlreadyExists) {
		return err
	}
	return nil
}

// buildEndpoint is the WorkloadEndpoint of an attachment.
func buildEndpoint(w *workload, ips []netip.Addr, att attachment) *api.WorkloadEndpoint {
	wep := &api.WorkloadEndpoint{
		ObjectMeta: api.ObjectMeta{Name: w.wepName, Namespace: w.namespace, Labels: w.labels},
		Spec: api.WorkloadEndpointSpec{
			Node: w.node, Orchestrator: w.orchestrator, Workload: w.name, ContainerID: w.containerID,
			Endpoint: w.ifName, InterfaceName: w.hostIf, MAC: att.contMAC.String(), Profiles: []string{w.profile},
		},
	}
	for _, ip := range ips {
		wep.Spec.IPNetworks = append(wep.Spec.IPNetworks, netip.PrefixFrom(ip, ip.BitLen()).String())
		if ip.Is4() {
			wep.Spec.IPv4Gateway = GatewayV4.String()
		} else {
			wep.Spec.IPv6Gateway = GatewayV6.String()
		}
	}
	return wep
}

// writeEndpoint creates the endpoint, or replaces one of the same name (a
// previous container of the same pod whose DEL has not come yet: the new
// one wins, as in Calico).
func writeEndpoint(ctx context.Context, s Store, wep *api.WorkloadEndpoint) error {
	for range 5 {
		_, err := s.Create(ctx, wep)
		if !errors.Is(err, datastore.ErrAlreadyExists) {
			return err
		}
		old, err := s.Get(ctx, api.KindWorkloadEndpoint, wep.Namespace, wep.Name)
		if errors.Is(err, datastore.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		nw := wep.DeepCopyResource().(*api.WorkloadEndpoint)
		nw.ResourceVersion = old.GetObjectMeta().ResourceVersion
		_, err = s.Update(ctx, nw)
		if !errors.Is(err, datastore.ErrConflict) && !errors.Is(err, datastore.ErrNotFound) {
			return err
		}
	}
	return fmt.Errorf("workload endpoint %s/%s keeps changing under us", wep.Namespace, wep.Name)
}
