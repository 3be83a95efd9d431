//go:build !nodeonly

package main

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/manifest"
	"github.com/bgpfabric/bgpfabric/peering"
)

// checkFamilies refuses BGPPeers whose spec.families ask for a family
// beyond IPv4 and IPv6 unicast (carried by route reflectors only) when a
// Node that is not a route reflector would have their sessions: nodes'
// routers carry unicast only. Nodes come from the documents and the
// datastore, and which Nodes a BGPPeer reaches is peering's own rule. A
// Node relabelled later is reported by peering as a warning (its
// sessions carry unicast only).
func checkFamilies(ctx context.Context, c *datastore.Client, docs []manifest.Document) error {
	var peers []manifest.Document
	for _, d := range docs {
		if p, ok := d.Resource.(*api.BGPPeer); ok && !api.OnlyUnicast(p.Spec.Families) {
			peers = append(peers, d)
		}
	}
	if len(peers) == 0 {
		return nil
	}
	var in peering.Input
	for _, kind := range []string{api.KindNode, api.KindBGPConfiguration} {
		stored, _, err := c.List(ctx, kind, "")
		if err != nil {
			return fmt.Errorf("checking spec.families: listing %s: %w", kind, err)
		}
		for _, r := range stored {
			if !slices.ContainsFunc(docs, func(d manifest.Document) bool { return sameResource(d.Resource, r) }) {
				in.Add(r)
			}
		}
	}
	for _, d := range docs {
		switch d.Resource.(type) {
		case *api.Node, *api.BGPConfiguration:
			in.Add(d.Resource)
		}
	}
	for _, d := range peers {
		in.Add(d.Resource)
	}
	m, err := peering.New(in)
	if err != nil {
		return fmt.Errorf("checking spec.families: %w", err)
	}
	var errs []error
	for _, d := range peers {
		p := d.Resource.(*api.BGPPeer)
		users := m.NonReflectorUsers(p.Name)
		if len(users) == 0 {
			continue
		}
		i := slices.IndexFunc(p.Spec.Families, func(f string) bool { return !api.OnlyUnicast([]string{f}) })
		errs = append(errs, &manifest.Error{Source: d.Source,
			Err: fmt.Errorf("spec.families[%d]: %s is carried by route reflectors only, and Node %s, which would have this BGPPeer's sessions, is not one (no spec.bgp.routeReflectorClusterID): select only reflectors with spec.node or spec.nodeSelector",
				i, p.Spec.Families[i], strings.Join(users, ", Node "))})
	}
	if len(errs) == 0 {
		return nil
	}
	return joinLines(errs)
}

// sameResource reports whether a and b are the same resource (kind and
// name).
func sameResource(a, b api.Resource) bool {
	return reflect.TypeOf(a) == reflect.TypeOf(b) && a.GetObjectMeta().Name == b.GetObjectMeta().Name &&
		a.GetObjectMeta().Namespace == b.GetObjectMeta().Namespace
}
