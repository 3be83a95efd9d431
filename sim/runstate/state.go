// Package runstate records what a simulation run created — namespaces,
// processes, files — in a state file under the run's directory, so that
// `sim down`, the next `sim up` or a test's cleanup can remove all of it,
// also after the sim that created it crashed.
//
// A run's directory is <base>/<run ID> (base: /run/bgpfabric/sim). Every
// namespace is recorded before it is created and every process right after
// it starts, so a crash at any point leaves a state file that names
// everything that exists. Processes are identified by PID and start time
// (field 22 of /proc/PID/stat), so a PID reused by an unrelated process is
// never signalled.
package runstate

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// DefaultBase is where runs live.
const DefaultBase = "/run/bgpfabric/sim"

// StateFile is the name of the state file in a run's directory.
const StateFile = "state.json"

// Phases of a run.
const (
	// PhaseBooting: the owner is building the run; if the owner is dead
	// the run is a leftover.
	PhaseBooting = "booting"
	// PhaseUp: the run was left running on purpose (`sim up`) and lives
	// until `sim down`.
	PhaseUp = "up"
	// PhaseDown: teardown has started.
	PhaseDown = "down"
)

// Proc is a process of the run.
type Proc struct {
	// Name is unique in the run: "agent/<node>", "datastore", ...
	Name  string   `json:"name"`
	PID   int      `json:"pid"`
	Start uint64   `json:"start"` // clock ticks after boot, /proc/PID/stat field 22
	Netns string   `json:"netns,omitempty"`
	Args  []string `json:"args"`
	Log   string   `json:"log,omitempty"`
}

// State is the content of a run's state file.
type State struct {
	RunID    string    `json:"runID"`
	Slot     int       `json:"slot"`
	Fabric   string    `json:"fabric"`
	Topology string    `json:"topology,omitempty"` // absolute path of the file
	Created  time.Time `json:"created"`
	Phase    string    `json:"phase"`
	// Owner is the process that is building (or running) the run.
	Owner Proc `json:"owner"`
	// Datastore is the etcd endpoint of the run.
	Datastore  string   `json:"datastore,omitempty"`
	Namespaces []string `json:"namespaces"`
	Procs      []Proc   `json:"procs"`
}

// Run is an open run: its directory and state, saved on every change. It
// is safe for concurrent use.
type Run struct {
	Dir string

	mu    sync.Mutex
	state State
}

// NewID returns a fresh random run ID.
func NewID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create makes the directory of a new run and writes its first state, with
// this process as owner. It fails if the run exists.
func Create(base string, st State) (*Run, error) {
	if !topology.ValidRunID(st.RunID) {
		return nil, fmt.Errorf("run ID %q: want six lower-case hex digits", st.RunID)
	}
	dir := filepath.Join(base, st.RunID)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	self, err := Self()
	if err != nil {
		return nil, err
	}
	st.Owner = self
	if st.Phase == "" {
		st.Phase = PhaseBooting
	}
	if st.Created.IsZero() {
		st.Created = time.Now()
	}
	r := &Run{Dir: dir, state: st}
	if err := r.saveLocked(); err != nil {
		return nil, err
	}
	// Without permission to index (not root), the run cannot create
	// namespaces either, so there is nothing for a cleanup to mistake.
	_ = index(st.RunID, dir)
	return r, nil
}

// Open reads the run in dir.
func Open(dir string) (*Run, error) {
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, err
	}
	r := &Run{Dir: dir}
	if err := json.Unmarshal(data, &r.state); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, StateFile), err)
	}
	return r, nil
}

// State returns a copy of the state.
func (r *Run) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.state
	st.Namespaces = slices.Clone(st.Namespaces)
	st.Procs = slices.Clone(st.Procs)
	return st
}

// Update changes the state with fn and saves it.
func (r *Run) Update(fn func(*State)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(&r.state)
	return r.saveLocked()
}

// AddNamespaces records namespaces about to be created.
func (r *Run) AddNamespaces(names ...string) error {
	return r.Update(func(s *State) {
		for _, n := range names {
			if !slices.Contains(s.Namespaces, n) {
				s.Namespaces = append(s.Namespaces, n)
			}
		}
	})
}

// AddProc records a started process, replacing one of the same name.
func (r *Run) AddProc(p Proc) error {
	return r.Update(func(s *State) {
		s.Procs = slices.DeleteFunc(s.Procs, func(q Proc) bool { return q.Name == p.Name })
		s.Procs = append(s.Procs, p)
	})
}

// RemoveProc forgets a process that has been stopped.
func (r *Run) RemoveProc(name string) error {
	return r.Update(func(s *State) {
		s.Procs = slices.DeleteFunc(s.Procs, func(q Proc) bool { return q.Name == name })
	})
}

// Proc returns the recorded process of that name.
func (r *Run) Proc(name string) (Proc, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.state.Procs {
		if p.Name == name {
			return p, true
		}
	}
	return Proc{}, false
}

// saveLocked writes the state atomically (temporary file and rename).
func (r *Run) saveLocked() error {
	data, err := json.MarshalIndent(&r.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(r.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("writing run state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(r.Dir, StateFile))
}

// Live reports whether the run is wanted: left up on purpose, or still
// owned by a running process. Runs that are not live are leftovers of a
// crash.
func (s *State) Live() bool {
	switch s.Phase {
	case PhaseUp:
		return true
	case PhaseDown:
		return false
	}
	return s.Owner.Alive()
}

// List reads every run under base. Directories without a readable state
// file are returned with an error joined.
func List(base string) ([]*Run, error) {
	ents, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var runs []*Run
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !topology.ValidRunID(e.Name()) {
			continue
		}
		r, err := Open(filepath.Join(base, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		runs = append(runs, r)
	}
	return runs, errors.Join(errs...)
}
