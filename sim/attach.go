package sim

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Attach opens a run that another process booted (`sim up`) for status,
// checks and faults. The plan is expanded again from the copy of the
// topology kept in the run's directory, with the run's ID and slot, so it
// is the plan the run was built from. Close lets go of the run without
// tearing it down; Down tears it down.
func Attach(ctx context.Context, runDir string, o Options) (*Fabric, error) {
	o.Keep = true
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	run, err := runstate.Open(runDir)
	if err != nil {
		return nil, err
	}
	st := run.State()
	topo, err := topology.Load(filepath.Join(runDir, "topology.yaml"))
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", st.RunID, err)
	}
	plan, err := topology.Expand(topo, topology.ExpandOptions{RunID: st.RunID, Slot: st.Slot})
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.Background())
	f := &Fabric{Plan: plan, opts: o, log: o.Logger.With("run", st.RunID), run: run, ctx: fctx, cancel: cancel, workloads: map[string]*workloadState{}}
	if f.net, err = netbuild.Attach(plan); err != nil {
		cancel()
		return nil, err
	}
	f.ds = &dsHandle{endpoint: st.Datastore, dataDir: filepath.Join(runDir, "etcd")}
	if rec, ok := run.Proc(dsProcName); ok {
		f.ds.proc = &proc{rec: rec, exited: make(chan struct{})}
	}
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	if f.client, err = datastore.New(cctx, datastore.Config{Endpoints: []string{st.Datastore}, DialTimeout: 10 * time.Second}); err != nil {
		f.Close()
		return nil, fmt.Errorf("run %s: datastore %s: %w", st.RunID, st.Datastore, err)
	}
	for _, w := range plan.Workloads {
		h, _ := f.net.Handle(w.Netns)
		f.workloads[w.Name] = &workloadState{plan: w, ns: h, addrs: workloadAddrs(h)}
	}
	return f, nil
}

// Down tears down the run of an attached fabric.
func (f *Fabric) Down() error {
	f.Close()
	return f.run.Teardown(f.opts.Grace)
}

// RunInfo describes a run on this machine.
type RunInfo struct {
	Dir   string
	State runstate.State
}

// Runs lists the runs under base (default runstate.DefaultBase), and
// leaves out those of other topology files when file is not "".
func Runs(base, file string) ([]RunInfo, error) {
	if base == "" {
		base = runstate.DefaultBase
	}
	runs, err := runstate.List(base)
	var out []RunInfo
	for _, r := range runs {
		st := r.State()
		if file != "" && st.Topology != absPath(file) {
			continue
		}
		out = append(out, RunInfo{Dir: r.Dir, State: st})
	}
	return out, err
}

// DownRun tears down the run in dir, whoever booted it.
func DownRun(dir string, grace time.Duration) error {
	r, err := runstate.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if grace == 0 {
		grace = runstate.DefaultGrace
	}
	return r.Teardown(grace)
}
