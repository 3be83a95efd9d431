package sim

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// agentProcName names a node's agent process in the run state.
func agentProcName(node string) string { return "agent/" + node }

// startAgents starts every node's agent (or router) in its namespace, in
// parallel.
func (f *Fabric) startAgents(ctx context.Context) error {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 16)
	for _, n := range f.Plan.Nodes {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f.StartAgent(n.Name); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
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
		args = f.opts.agentCommand(n, f.ds.endpoint, f.run.Dir)
		env = []string{"BGPFABRIC_DATASTORE=" + f.ds.endpoint, "BGPFABRIC_NODE_NAME=" + n.Name}
	}
	log := filepath.Join(f.run.Dir, "logs", n.Name+".log")
	p, err := startIn(f.run, agentProcName(node), h, n.Netns, args, log, env)
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
