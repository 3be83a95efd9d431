package sim

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// agentProcName names a node's agent process in the run state.
func agentProcName(node string) string { return "agent/" + node }

// startAgents starts every node's agent (or router) in its namespace,
// admitting them by readiness: at most Options.AgentWindow agents are
// started and not yet ready at any time; each agent that becomes ready
// (FelixStatus ready for a node, a BGPStatus for a reflector; a router's
// process running) lets the next one start. A fixed parallelism either
// wastes a fast machine or, on a slow one, starts agents faster than etcd
// serves their first sync and status writes, which slows every one of
// them down.
func (f *Fabric) startAgents(ctx context.Context) error {
	var cache *statusCache
	if f.opts.Ready == ReadyStatus {
		cache = newStatusCache()
		syncer, err := datastore.NewSyncer(f.client, datastore.SyncerConfig{
			Kinds:   []string{api.KindBGPStatus, api.KindFelixStatus},
			Handler: cache,
		})
		if err != nil {
			return err
		}
		sctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { syncer.Run(sctx); close(done) }()
		defer func() { cancel(); <-done }()
	}
	type pending struct {
		name    string
		started time.Time
	}
	var (
		inFlight []pending
		errs     []error
		timedOut []string
	)
	// ready reports whether the agent counts as ready for the admission.
	ready := func(p pending) bool {
		n := f.Plan.Node(p.name)
		if cache == nil || n.Agent == topology.AgentRouter {
			return true
		}
		if time.Since(p.started) > agentReadyTimeout {
			timedOut = append(timedOut, p.name)
			return true
		}
		if pr := f.procs.get(agentProcName(p.name)); pr != nil && !pr.running() {
			return true // exited: convergence reports it
		}
		cache.mu.Lock()
		defer cache.mu.Unlock()
		if n.Agent == topology.AgentReflector {
			return cache.bgp[p.name] != nil
		}
		fs := cache.felix[p.name]
		return fs != nil && fs.Status.Ready
	}
	tick := time.NewTicker(time.Second) // for the readiness timeout
	defer tick.Stop()
	for _, n := range f.Plan.Nodes {
		for len(inFlight) >= f.opts.AgentWindow {
			inFlight = slices.DeleteFunc(inFlight, ready)
			if len(inFlight) < f.opts.AgentWindow {
				break
			}
			if cache == nil {
				break
			}
			select {
			case <-ctx.Done():
				return errors.Join(append(errs, ctx.Err())...)
			case <-cache.poke:
			case <-tick.C:
			}
		}
		if err := f.StartAgent(n.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		inFlight = append(inFlight, pending{n.Name, time.Now()})
	}
	if len(timedOut) > 0 {
		f.progress("%d agents were not ready within %s of their start (admission went on): %v", len(timedOut), agentReadyTimeout, timedOut)
	}
	return errors.Join(append(errs, ctx.Err())...)
}

// StartAgent starts a node's agent (again, after KillAgent).
func (f *Fabric) StartAgent(node string) error {
	n := f.Plan.Node(node)
	if n == nil {
		return fmt.Errorf("no node %q", node)
	}
	if p := f.procs.get(agentProcName(node)); p != nil && p.running() {
		return fmt.Errorf("agent of %s is running", node)
	}
	h, ok := f.net.Handle(n.Netns)
	if !ok {
		return fmt.Errorf("no namespace for node %s", node)
	}
	var args []string
	var env []string
	if n.Agent == topology.AgentRouter {
		var err error
		if args, err = f.routerCommand(n); err != nil {
			return err
		}
	} else {
		ep := f.ds.agentEndpoint()
		if f.relay != nil {
			var err error
			if ep, err = f.relay.endpoint(f.ctx, node); err != nil {
				return err
			}
		}
		args = f.opts.agentCommand(n, ep, f.run.Dir)
		env = []string{"BGPFABRIC_DATASTORE=" + ep, "BGPFABRIC_NODE_NAME=" + n.Name}
	}
	log := filepath.Join(f.run.Dir, "logs", n.Name+".log")
	p, err := startIn(f.run, agentProcName(node), h, n.Netns, args, log, env, f.opts.AgentNice)
	if p != nil {
		f.procs.set(agentProcName(node), p)
	}
	return err
}

// KillAgent stops a node's agent: SIGTERM, then SIGKILL after the grace
// time. With hard, SIGKILL at once (a crash).
func (f *Fabric) KillAgent(node string, hard bool) error {
	stop := func(rec runstate.Proc) error {
		if hard {
			return rec.Kill()
		}
		return rec.Stop(f.opts.Grace)
	}
	p := f.procs.get(agentProcName(node))
	if p == nil {
		rec, ok := f.run.Proc(agentProcName(node))
		if !ok {
			return fmt.Errorf("no agent for node %q", node)
		}
		return errors.Join(stop(rec), f.run.RemoveProc(rec.Name))
	}
	err := stop(p.rec)
	<-p.exited
	return errors.Join(err, f.run.RemoveProc(p.rec.Name))
}

// RestartAgent stops and starts a node's agent.
func (f *Fabric) RestartAgent(node string) error {
	if err := f.KillAgent(node, false); err != nil {
		return err
	}
	return f.StartAgent(node)
}

// AgentsRunning counts the agents whose process runs.
func (f *Fabric) AgentsRunning() (running, total int) {
	return f.agentsRunning(nil)
}

// agentsRunning counts the agents whose process runs, leaving out those
// of the nodes in down.
func (f *Fabric) agentsRunning(down map[string]bool) (running, total int) {
	for _, n := range f.Plan.Nodes {
		if down[n.Name] {
			continue
		}
		total++
		if p := f.procs.get(agentProcName(n.Name)); p != nil && p.running() {
			running++
		} else if p == nil {
			if rec, ok := f.run.Proc(agentProcName(n.Name)); ok && rec.Alive() {
				running++
			}
		}
	}
	return running, total
}
