package cni

import (
	"errors"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// Status reports whether the plugin could serve an ADD now: the datastore
// answers, the node is registered (IPAM needs its labels), and, when the
// node's agent has reported (a FelixStatus named after the node), the
// agent is ready. A node without any FelixStatus is taken as ready on the
// datastore's word alone: the agent may not run yet, or not at all (e.g.
// a routing-only setup), and workloads still get addresses and veths.
// Failure is code 50, "plugin not available".
func (p *Plugin) Status(args *skel.CmdArgs) error {
	c, err := p.begin("STATUS", args)
	if err != nil {
		return err
	}
	defer c.end()
	notAvailable := func(msg string) error {
		c.log.Warn("not available", logKeyError, msg)
		return types.NewError(types.ErrPluginNotAvailable, msg, "")
	}
	store, err := c.connect()
	if err != nil {
		return notAvailable(err.(*types.Error).Msg)
	}
	node := c.conf.NodeName
	if _, err := store.Get(c.ctx, api.KindNode, "", node); errors.Is(err, datastore.ErrNotFound) {
		return notAvailable("node " + node + " is not registered in the datastore")
	} else if err != nil {
		return notAvailable("datastore unavailable: " + err.Error())
	}
	r, err := store.Get(c.ctx, api.KindFelixStatus, "", node)
	switch {
	case errors.Is(err, datastore.ErrNotFound):
		return nil
	case err != nil:
		return notAvailable("datastore unavailable: " + err.Error())
	}
	if fs, ok := r.(*api.FelixStatus); ok && !fs.Status.Ready {
		msg := "node agent on " + node + " is not ready (dataplane " + string(fs.Status.Dataplane.State)
		if fs.Status.Dataplane.Error != "" {
			msg += ": " + fs.Status.Dataplane.Error
		}
		return notAvailable(msg + ")")
	}
	return nil
}
