package kubecontrollers

import (
	"context"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/kubecontrollers/convert"
)

// watchEndpoints enqueues a pod whenever the CNI plugin writes its
// endpoint, so that an endpoint created after the pod's last change gets
// the pod's labels at once, and a node whenever its bgpfabric Node is
// written, for the same reason. It runs until ctx ends.
func (c *Controllers) watchEndpoints(ctx context.Context) {
	s, err := datastore.NewSyncer(c.ds, datastore.SyncerConfig{
		Kinds: []string{api.KindWorkloadEndpoint, api.KindNode}, Handler: endpointHandler{c}, Logger: c.lg,
	})
	if err != nil {
		c.lg.Error("kube-controllers: watching workload endpoints", logKeyErr, err)
		return
	}
	if err := s.Run(ctx); err != nil && ctx.Err() == nil {
		c.lg.Error("kube-controllers: watching workload endpoints stopped", logKeyErr, err)
	}
}

// endpointHandler is the syncer's handler.
type endpointHandler struct{ c *Controllers }

func (h endpointHandler) OnStatus(datastore.SyncStatus) {}

func (h endpointHandler) OnSnapshot(s datastore.Snapshot) {
	for _, r := range s.Resources {
		h.enqueue(r)
	}
}

func (h endpointHandler) OnUpdates(evs []datastore.Event) {
	for _, e := range evs {
		if e.Type == datastore.Added || e.Type == datastore.Modified {
			h.enqueue(e.Resource)
		}
	}
}

func (h endpointHandler) enqueue(r api.Resource) {
	if n, ok := r.(*api.Node); ok {
		h.c.queue.Add(key(kindNode, "", n.Name))
		return
	}
	w, ok := r.(*api.WorkloadEndpoint)
	if !ok || w.Spec.Orchestrator != convert.OrchestratorK8s {
		return
	}
	h.c.queue.Add(key(kindPod, w.Namespace, w.Spec.Workload))
}
