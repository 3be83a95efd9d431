package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/vishvananda/netlink"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/ipam"
)

// Del detaches a container. It removes whatever of the attachment
// exists, so it succeeds after a partial or failed ADD and when called
// again: the endpoint first (so felix stops routing to it), then the veth,
// then the addresses (last, so that they are never handed out while still
// configured), then the attachment record. The veth is removed even when
// the datastore is down; the call then fails with code 11, and the
// runtime's retry finishes the job.
//
// The host side of the veth is named after the pod, so a pod's new
// sandbox has the same name as its old one: it is deleted only when it is
// provably this container's (see ownsHost).
func (p *Plugin) Del(args *skel.CmdArgs) error {
	c, err := p.begin("DEL", args)
	if err != nil {
		return err
	}
	defer c.end()
	if err := c.del(args); err != nil {
		c.log.Error("DEL failed", logKeyError, err)
		return err
	}
	return nil
}

func (c *call) del(args *skel.CmdArgs) error {
	w, err := newWorkload(c.conf, args.ContainerID, args.IfName, args.Args)
	if err != nil {
		return err
	}
	rec, err := c.records().load(w.handle)
	if err != nil {
		c.log.Warn("attachment record unusable", logKeyError, err)
	}
	store, storeErr := c.connect()
	var errs []error
	// Only this container's endpoint: a new container of the same pod may
	// have replaced it.
	endpoint := ownerUnknown
	if storeErr == nil {
		ours, err := deleteEndpoint(c.ctx, store, w.namespace, w.wepName, w.containerID)
		switch {
		case err != nil:
			errs = append(errs, cniError("deleting workload endpoint", err))
		case ours:
			endpoint = ownerYes
		default:
			endpoint = ownerNo
		}
	}
	if err := c.dp.teardown(w.hostIf, args.Netns, w.ifName, c.ownsHost(rec, w.handle, endpoint)); err != nil {
		errs = append(errs, cniError("removing the veth", err))
	}
	if storeErr != nil {
		errs = append(errs, storeErr)
	} else {
		if err := c.release(store, w.handle); err != nil {
			errs = append(errs, cniError("releasing addresses", err))
		}
	}
	if len(errs) > 0 {
		return errs[0] // a CNI error has one code: the first failure's
	}
	if err := c.records().remove(w.handle); err != nil {
		return cniError("", err)
	}
	return nil
}

// ownsHost decides whether a host interface with the attachment's name is
// the attachment's own. The attachment's record says so exactly (the
// interface's index and MAC, which a new veth never shares). Without a
// record (an attachment made before records existed), an interface that
// another attachment's record claims is not ours, and otherwise the
// datastore decides (endpoint is ownerYes when the endpoint belonged to
// this container or did not exist, ownerNo when it belongs to another,
// ownerUnknown without the datastore). Without record and datastore, the
// host interface alone is left alone: a DEL during an outage must not
// take the veth of a newer sandbox of the same pod.
func (c *call) ownsHost(rec *record, handle string, endpoint ownership) func(netlink.Link) ownership {
	return func(l netlink.Link) ownership {
		switch {
		case rec != nil && rec.owns(l):
			return ownerYes
		case rec != nil, c.records().claimedByOther(l, handle):
			return ownerNo
		}
		return endpoint
	}
}

// deleteEndpoint deletes the endpoint if it belongs to containerID (or
// records none) and reports whether the name is ours to clean up: true
// when it was deleted or does not exist.
func deleteEndpoint(ctx context.Context, s Store, namespace, name, containerID string) (bool, error) {
	for range 5 {
		r, err := s.Get(ctx, api.KindWorkloadEndpoint, namespace, name)
		if errors.Is(err, datastore.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		wep, ok := r.(*api.WorkloadEndpoint)
		if !ok {
			return false, fmt.Errorf("%s/%s: stored value is a %T", namespace, name, r)
		}
		if wep.Spec.ContainerID != "" && wep.Spec.ContainerID != containerID {
			return false, nil
		}
		err = s.Delete(ctx, api.KindWorkloadEndpoint, namespace, name, wep.ResourceVersion)
		if err == nil || errors.Is(err, datastore.ErrNotFound) {
			return true, nil
		}
		if !errors.Is(err, datastore.ErrConflict) {
			return false, err
		}
	}
	return false, fmt.Errorf("workload endpoint %s/%s keeps changing under us", namespace, name)
}

// release releases the addresses of handle.
func (c *call) release(store Store, handle string) error {
	ic, err := ipam.New(ipam.Config{Store: store, Logger: c.log})
	if err != nil {
		return err
	}
	rel, err := ic.ReleaseByHandle(c.ctx, handle)
	if err == nil {
		c.log.Info("deleted", logKeyIPs, rel)
	}
	return err
}
