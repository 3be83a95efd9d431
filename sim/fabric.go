// Package sim boots a whole bgpfabric fabric on one machine from a
// topology: a network namespace per node (and per segment and workload),
// veth links, an embedded etcd on a unix socket under the run's
// directory, the plan's resources applied, one agent process per node
// inside its namespace (bgpfabric node, bgpfabric reflector, or an
// external BIRD/FRR/GoBGP router), workloads through the real CNI plugin;
// then it waits, on events, until the fabric has converged, runs checks
// with real packets, injects faults, and removes everything.
//
// It is also the Go API that CI pipelines use:
//
//	f := sim.BootT(t, topo, sim.Options{})   // torn down by t.Cleanup
//	rep := f.Check(ctx)
//
// Everything a run creates carries its run ID and is recorded in its state
// file (package runstate) before it exists, so Close, `sim down`, or the
// next Boot after a crash removes it.
package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// Fabric is a booted simulation.
type Fabric struct {
	Plan *topology.Plan

	opts Options
	log  *slog.Logger
	run  *runstate.Run
	net  *netbuild.Net

	ds     *dsHandle
	client *datastore.Client
	// relay, if set, relays each agent's datastore connection
	// (Options.DatastoreRelay).
	relay *dsRelay
	procs procTable
	// kube is the Kubernetes control plane (topology kubernetes:).
	kube *kubeState

	// ctx lives as long as the fabric: listeners and watchers end with it.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	workloads map[string]*workloadState
	// echoes are the workloads whose fault-timeline echo listener runs.
	echoes    map[string]bool
	timings   Timings
	bootStart time.Time

	closeOnce sync.Once
	closeErr  error
}

// Timings are where the boot's time went.
type Timings struct {
	Namespaces time.Duration `json:"namespaces_seconds"`
	Datastore  time.Duration `json:"datastore_seconds"`
	Agents     time.Duration `json:"agents_seconds"`
	Workloads  time.Duration `json:"workloads_seconds"`
	Boot       time.Duration `json:"boot_seconds"`
	Converge   time.Duration `json:"converge_seconds"`
	// Milestones of the first convergence, counted from the start of the
	// boot (agents start before workloads are wired, so these overlap
	// the boot): every node ready, every session Established, every
	// route in place.
	AllReady       time.Duration `json:"all_ready_seconds,omitempty"`
	AllEstablished time.Duration `json:"all_established_seconds,omitempty"`
	AllRoutes      time.Duration `json:"all_routes_seconds,omitempty"`
}

// RunID is the run's ID.
func (f *Fabric) RunID() string { return f.Plan.RunID }

// Dir is the run's directory (state, logs, etcd data and socket).
func (f *Fabric) Dir() string { return f.run.Dir }

// Datastore is the run's etcd endpoint.
func (f *Fabric) Datastore() string { return f.ds.endpoint }

// Client is a datastore client of the run.
func (f *Fabric) Client() *datastore.Client { return f.client }

// Timings returns the boot timings measured so far.
func (f *Fabric) Timings() Timings {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.timings
}

// BootT boots a topology for a test and tears it down when the test ends
// (also when it fails). Boot errors fail the test.
func BootT(t testing.TB, topo *topology.Topology, o Options) *Fabric {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f, err := Boot(ctx, topo, o)
	if f != nil {
		t.Cleanup(func() {
			if err := f.Close(); err != nil {
				t.Errorf("sim teardown: %v", err)
			}
		})
	}
	if err != nil {
		t.Fatalf("sim boot: %v", err)
	}
	return f
}

// Boot builds and starts a fabric and returns once its agents run (it
// does not wait for convergence: call WaitConverged). If it fails, what it
// created is removed before it returns — unless the returned Fabric is
// non-nil, in which case Close removes it (BootT registers Close first, so
// a test can read the logs of a half-booted fabric).
func Boot(ctx context.Context, topo *topology.Topology, o Options) (f *Fabric, err error) {
	o, err = o.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, err := runstate.CleanupDead(o.Base, o.Grace); err != nil {
		o.Logger.Warn("cleaning leftovers of dead runs", "err", err)
	}
	start := time.Now()
	var run *runstate.Run
	for range 5 {
		run, err = runstate.CreateAuto(o.Base, runstate.State{RunID: runstate.NewID(), Fabric: topo.Name, Topology: absPath(topo.File())})
		if err == nil || !errors.Is(err, os.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	st := run.State()
	plan, err := topology.Expand(topo, topology.ExpandOptions{RunID: st.RunID, Slot: st.Slot})
	if err != nil {
		return nil, errors.Join(err, run.Teardown(o.Grace))
	}
	if src := topo.File(); src != "" {
		// A copy, so that status, check and down read the plan the run was
		// built from, whatever happens to the file.
		if data, err := os.ReadFile(src); err == nil {
			_ = os.WriteFile(filepath.Join(run.Dir, "topology.yaml"), data, 0o644)
		}
	}
	fctx, cancel := context.WithCancel(context.Background())
	f = &Fabric{Plan: plan, opts: o, log: o.Logger.With("run", st.RunID), run: run, ctx: fctx, cancel: cancel, workloads: map[string]*workloadState{}}
	defer func() {
		if err != nil && f != nil {
			err = errors.Join(err, f.Close())
			f = nil
		}
	}()
	f.bootStart = start
	f.progress("run %s (%s): %d nodes, %d segments, %d links, %d workloads; state in %s",
		st.RunID, plan.Name, len(plan.Nodes), len(plan.Segments), len(plan.Links), len(plan.Workloads), run.Dir)
	if ch, err := runstate.RaiseNeighLimit(st.RunID, neighbourEntries(plan)); err != nil {
		f.log.Warn("the kernel's neighbour tables may overflow in a fabric this size", "need", neighbourEntries(plan), "err", err)
	} else {
		for _, c := range ch {
			f.progress("raised the kernel's neighbour table limit for this fabric (host-wide; put back at teardown): %s", c)
		}
	}

	t0 := time.Now()
	if f.net, err = netbuild.Build(ctx, plan, run, netbuild.Options{Logger: f.log}); err != nil {
		return f, fmt.Errorf("building namespaces: %w", err)
	}
	f.setTiming(func(t *Timings) { t.Namespaces = time.Since(t0) })
	f.progress("namespaces and links up in %s", time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	if err = f.startDatastore(ctx); err != nil {
		return f, err
	}
	if _, err = f.client.ApplyAll(ctx, plan.Resources); err != nil {
		return f, fmt.Errorf("applying the plan's resources: %w", err)
	}
	if (o.DatastoreRelay || plan.DatastorePartition()) && !o.Keep {
		if f.relay, err = newDSRelay(f.ds.agentEndpoint(), filepath.Join(run.Dir, "dsr")); err != nil {
			return f, err
		}
	}
	f.setTiming(func(t *Timings) { t.Datastore = time.Since(t0) })
	f.progress("datastore %s up, %d resources applied in %s", f.ds.endpoint, len(plan.Resources), time.Since(t0).Round(time.Millisecond))
	if plan.Kubernetes != nil {
		if err = f.startKube(ctx); err != nil {
			return f, err
		}
	}

	// Workloads before agents: the plugin needs only the datastore and the
	// nodes' namespaces, and agents that start with every endpoint in
	// place sync once, instead of reprogramming and re-advertising on each
	// of the plugin's writes while it competes with them for the CPUs
	// (docs/benchmarks.md, "Simulator").
	t0 = time.Now()
	if err = f.startWorkloads(ctx); err != nil {
		return f, err
	}
	f.setTiming(func(t *Timings) { t.Workloads = time.Since(t0) })
	if plan.Kubernetes != nil {
		// The agents start with kube-controllers' policies in place, as
		// with every endpoint: they sync once, and the first checks see
		// the policies enforced.
		if err = f.WaitKubePolicies(ctx); err != nil {
			return f, err
		}
	}

	t0 = time.Now()
	if err = f.startAgents(ctx); err != nil {
		return f, err
	}
	f.setTiming(func(t *Timings) { t.Agents = time.Since(t0); t.Boot = time.Since(start) })
	f.progress("%d agents started in %s", len(plan.Nodes), time.Since(t0).Round(time.Millisecond))
	if !o.Keep {
		return f, nil
	}
	return f, run.Update(func(s *runstate.State) { s.Phase = runstate.PhaseUp })
}

func (f *Fabric) setTiming(fn func(*Timings)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.timings)
}

func (f *Fabric) progress(format string, args ...any) {
	f.log.Debug(fmt.Sprintf(format, args...))
	if f.opts.Progress != nil {
		fmt.Fprintf(f.opts.Progress, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
}

// Close tears the fabric down — agents, datastore, namespaces, files —
// unless it was booted with Keep, in which case it only lets go of it.
// It may be called more than once.
func (f *Fabric) Close() error {
	f.closeOnce.Do(func() {
		f.cancel()
		var errs []error
		if f.client != nil {
			f.client.Close()
		}
		if f.opts.Keep {
			if f.net != nil {
				f.net.Close()
			}
			return
		}
		// Agents first, while their datastore still answers: then they
		// exit at once instead of waiting out the grace time for it.
		errs = append(errs, f.run.StopProcs(f.opts.Grace))
		if f.kube != nil {
			errs = append(errs, f.kube.close())
		}
		if f.relay != nil {
			f.relay.close()
		}
		f.teardownWorkloads()
		if f.ds != nil {
			errs = append(errs, f.ds.close())
		}
		if f.net != nil {
			f.net.Close()
		}
		errs = append(errs, f.run.Teardown(f.opts.Grace))
		f.closeErr = errors.Join(errs...)
	})
	return f.closeErr
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// RunState returns the run's recorded state.
func (f *Fabric) RunState() runstate.State { return f.run.State() }

// Abandon lets go of the fabric without tearing anything down, as a crash
// would (for tests of crash cleanup).
func (f *Fabric) Abandon() {
	f.closeOnce.Do(func() {
		f.cancel()
		if f.client != nil {
			f.client.Close()
		}
		if f.ds != nil && f.ds.embedded != nil {
			f.ds.embedded.Close()
		}
		if f.relay != nil {
			f.relay.close()
		}
		if f.kube != nil {
			f.kube.close()
		}
		if f.net != nil {
			f.net.Abandon()
		}
	})
}

// neighbourEntries estimates the neighbour entries a fabric needs at most,
// all namespaces together (the kernel counts them in one table, see
// runstate.RaiseNeighLimit): every pair of nodes on a segment, both ends
// of every link, each workload and its host side, and a quarter more.
func neighbourEntries(p *topology.Plan) int {
	n := 2*len(p.Links) + 2*len(p.Workloads)
	for _, s := range p.Segments {
		k := len(s.Members)
		n += k * (k - 1)
	}
	return n + n/4
}
