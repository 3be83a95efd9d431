package router

import (
	"context"
	"fmt"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// DatastoreResources is the production ResourceSource: a syncer of the
// kinds the router depends on.
func DatastoreResources(c *datastore.Client) ResourceSource { return dsSource{c} }

type dsSource struct{ c *datastore.Client }

func (s dsSource) Run(ctx context.Context, h datastore.SyncHandler) error {
	sy, err := datastore.NewSyncer(s.c, datastore.SyncerConfig{
		Kinds:   []string{api.KindNode, api.KindBGPConfiguration, api.KindBGPPeer, api.KindBGPFilter, api.KindServiceAdvertisement},
		Handler: h,
	})
	if err != nil {
		return err
	}
	return sy.Run(ctx)
}

// DatastoreStatus is the production StatusSink: a leased StatusWriter,
// so that a dead node's status expires.
func DatastoreStatus(ctx context.Context, c *datastore.Client) (StatusSink, error) {
	w, err := c.NewStatusWriter(ctx, datastore.StatusWriterConfig{})
	if err != nil {
		return nil, fmt.Errorf("router status: %w", err)
	}
	return statusWriter{w}, nil
}

// SharedStatus writes BGPStatus through w, the node's status writer,
// under the node's one lease; Close leaves w open (its owner closes it).
func SharedStatus(w *datastore.StatusWriter) StatusSink { return sharedStatus{statusWriter{w}} }

type sharedStatus struct{ statusWriter }

func (sharedStatus) Close() error { return nil }

type statusWriter struct{ w *datastore.StatusWriter }

func (s statusWriter) Put(ctx context.Context, r *api.BGPStatus) error {
	_, err := s.w.Put(ctx, r)
	return err
}

func (s statusWriter) Close() error { return s.w.Close() }
