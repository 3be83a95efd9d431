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
		ours := true
		if ns != "" && wep != "" {
			if ours, err = deleteEndpoint(c.ctx, store, ns, wep, cid); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if wl := a.Attrs[ipam.AttrWorkload]; wl != "" && ns != "" {
			hostIf := HostIfName(ns, wl, ifName)
			if err := c.dp.teardown(hostIf, "", ifName, func() bool { return ours }); err != nil {
				errs = append(errs, err)
			}
		}
		rel, err := ic.ReleaseByHandle(c.ctx, h)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.log.Info("collected", logKeyHandle, h, logKeyIPs, rel)
	}
	if err := errors.Join(errs...); err != nil {
		return cniError("GC", err)
	}
	return nil
}
