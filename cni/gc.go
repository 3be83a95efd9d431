package cni

import (
	"encoding/json"
	"errors"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/bgpfabric/bgpfabric/ipam"
)

// GC releases what the plugin holds on this node, for this network, for
// attachments that the runtime no longer lists in
// cni.dev/valid-attachments: the addresses, the endpoint (if it still
// belongs to that container) and the host side of the veth if it is left.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	c, err := p.begin("GC", args)
	if err != nil {
		return err
	}
	defer c.end()
	if err := c.gc(args); err != nil {
		c.log.Error("GC failed", logKeyError, err)
		return err
	}
	return nil
}

func (c *call) gc(args *skel.CmdArgs) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(args.StdinData, &raw); err != nil {
		return types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	_, ok1 := raw["cni.dev/valid-attachments"]
	_, ok2 := raw["cni.dev/attachments"]
	if !ok1 && !ok2 {
		// Without the list, every attachment would look stale.
		return configError("cni.dev/valid-attachments", "is required for GC")
	}
	valid := map[types.GCAttachment]bool{}
	for _, a := range c.conf.ValidAttachments {
		valid[a] = true
	}
	if !ok1 {
		var list []types.GCAttachment
		if err := json.Unmarshal(raw["cni.dev/attachments"], &list); err != nil {
			return configError("cni.dev/attachments", "%v", err)
		}
		for _, a := range list {
			valid[a] = true
		}
	}
	store, err := c.connect()
	if err != nil {
		return err
	}
	ic, err := ipam.New(ipam.Config{Store: store, Logger: c.log})
	if err != nil {
		return err
	}
	allocs, err := ic.Allocations(c.ctx)
	if err != nil {
		return cniError("listing allocations", err)
	}
	stale := map[string]ipam.Allocation{}
	for _, a := range allocs {
		network, cid, ifName, ok := parseHandle(a.Handle)
		if !ok || network != c.conf.Name || a.Attrs[ipam.AttrNode] != c.conf.NodeName {
			continue
		}
		if !valid[types.GCAttachment{ContainerID: cid, IfName: ifName}] {
			stale[a.Handle] = a
		}
	}
	var errs []error
	for h, a := range stale {
		_, cid, ifName, _ := parseHandle(h)
		ns, wep := a.Attrs[ipam.AttrNamespace], a.Attrs[ipam.AttrEndpoint]
		rec, err := c.records().load(h)
		if err != nil {
			c.log.Warn("attachment record unusable", logKeyError, err)
		}
		endpoint := ownerYes
		if ns != "" && wep != "" {
			ours, err := deleteEndpoint(c.ctx, store, ns, wep, cid)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ours {
				endpoint = ownerNo
			}
		}
		if wl := a.Attrs[ipam.AttrWorkload]; wl != "" && ns != "" {
			hostIf := HostIfName(ns, wl, ifName)
			if err := c.dp.teardown(hostIf, "", ifName, c.ownsHost(rec, h, endpoint)); err != nil {
				errs = append(errs, err)
			}
		}
		rel, err := ic.ReleaseByHandle(c.ctx, h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.records().remove(h); err != nil {
			errs = append(errs, err)
		}
		c.log.Info("collected", logKeyHandle, h, logKeyIPs, rel)
	}
	// Records of attachments that the runtime no longer lists and that
	// hold no address any more (released by hand, say): their host
	// interface, if it is still theirs, and the record go.
	recs, err := c.records().all()
	if err != nil {
		errs = append(errs, err)
	}
	for _, r := range recs {
		network, cid, ifName, ok := parseHandle(r.Handle)
		if _, done := stale[r.Handle]; !ok || done || network != c.conf.Name || valid[types.GCAttachment{ContainerID: cid, IfName: ifName}] {
			continue
		}
		if err := c.dp.teardown(r.HostIf, "", ifName, c.ownsHost(r, r.Handle, ownerNo)); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.records().remove(r.Handle); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return cniError("GC", err)
	}
	return nil
}
