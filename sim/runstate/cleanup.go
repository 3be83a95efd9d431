package runstate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/sim/topology"
)

// NetnsDir is where named network namespaces are mounted.
const NetnsDir = "/run/netns"

// DefaultGrace is how long a process gets between SIGTERM and SIGKILL.
const DefaultGrace = 5 * time.Second

// CreateAuto creates a run like Create, choosing its slot: the lowest one
// that no live run uses. It holds a lock on base meanwhile, so that two
// runs starting at once never pick the same slot.
func CreateAuto(base string, st State) (*Run, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lock(base)
	if err != nil {
		return nil, err
	}
	defer unlock()
	runs, _ := List(base)
	used := map[int]bool{}
	for _, r := range runs {
		if s := r.State(); s.Live() {
			used[s.Slot] = true
		}
	}
	st.Slot = -1
	for i := 0; i <= topology.MaxSlot; i++ {
		if !used[i] {
			st.Slot = i
			break
		}
	}
	if st.Slot < 0 {
		return nil, fmt.Errorf("%d runs are live: no address slot left; `bgpfabric sim down` some", topology.MaxSlot+1)
	}
	return Create(base, st)
}

func lock(base string) (func(), error) { return lockFile(filepath.Join(base, ".lock")) }

// lockFile holds an exclusive flock on path (created if missing) until
// the returned function is called.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

// Teardown removes everything the run recorded: it stops the processes,
// then deletes the namespaces (their links go with them), then the run's
// directory. It goes on after errors and returns them all joined; a
// second call finishes what a failed first one left.
func (r *Run) Teardown(grace time.Duration) error {
	_ = r.Update(func(s *State) { s.Phase = PhaseDown })
	st := r.State()
	var errs []error
	var mu sync.Mutex
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	if err := r.StopProcs(grace); err != nil {
		fail(err)
	}
	if err := DeleteNamespaces(st.Namespaces); err != nil {
		fail(err)
	}
	// Namespaces created but not recorded cannot exist (they are recorded
	// first), but a run ID is unique: sweep its prefix too.
	if err := DeleteNamespaces(RunNamespaces(st.RunID)); err != nil {
		fail(err)
	}
	if err := ReleaseNeighLimit(st.RunID); err != nil {
		fail(err)
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(r.Dir); err != nil {
			fail(err)
		}
		unindex(st.RunID)
	}
	return errors.Join(errs...)
}

// DatastoreProc is the name of a run's etcd process: StopProcs stops it
// last.
const DatastoreProc = "datastore"

// StopProcs stops the run's recorded processes, in parallel: the agents
// first, then the datastore. Agents that lose their datastore while they
// shut down wait for it (to revoke their status leases) until their grace
// runs out; stopped while it still answers, they exit in about a second.
func (r *Run) StopProcs(grace time.Duration) error {
	st := r.State()
	var agents, last []Proc
	for _, p := range st.Procs {
		if p.Name == DatastoreProc {
			last = append(last, p)
		} else {
			agents = append(agents, p)
		}
	}
	var errs []error
	var mu sync.Mutex
	for _, wave := range [][]Proc{agents, last} {
		var wg sync.WaitGroup
		for _, p := range wave {
			wg.Go(func() {
				if err := p.Stop(grace); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	return errors.Join(errs...)
}

// DeleteNamespaces removes named namespaces, in parallel; missing ones are
// not an error.
func DeleteNamespaces(names []string) error {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, n := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := netns.DeleteNamed(n); err != nil && !errors.Is(err, os.ErrNotExist) {
				// A file that was never mounted (a crash between creating
				// it and the bind mount) only needs removing.
				_ = os.Remove(filepath.Join(NetnsDir, n))
				if _, statErr := os.Stat(filepath.Join(NetnsDir, n)); errors.Is(statErr, os.ErrNotExist) {
					return
				}
				mu.Lock()
				errs = append(errs, fmt.Errorf("deleting namespace %s: %w", n, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RunNamespaces lists the namespaces in NetnsDir that belong to run id.
func RunNamespaces(id string) []string {
	var out []string
	for run, names := range allRunNamespaces() {
		if run == id {
			out = append(out, names...)
		}
	}
	return out
}

func allRunNamespaces() map[string][]string {
	ents, err := os.ReadDir(NetnsDir)
	if err != nil {
		return nil
	}
	m := map[string][]string{}
	for _, e := range ents {
		if run, ok := topology.RunOfNetns(e.Name()); ok {
			m[run] = append(m[run], e.Name())
		}
	}
	return m
}

// CleanupDead tears down every run under base that is not live (its owner
// crashed, or its teardown was interrupted), and deletes namespaces of
// runs that have no directory at all. It returns the IDs it cleaned.
func CleanupDead(base string, grace time.Duration) ([]string, error) {
	runs, listErr := List(base)
	var cleaned []string
	var errs []error
	if listErr != nil {
		errs = append(errs, listErr)
	}
	known := map[string]bool{}
	for _, r := range runs {
		st := r.State()
		known[st.RunID] = true
		if st.Live() {
			continue
		}
		if err := r.Teardown(grace); err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", st.RunID, err))
			continue
		}
		cleaned = append(cleaned, st.RunID)
	}
	for run, names := range allRunNamespaces() {
		if known[run] {
			continue
		}
		// No directory under this base: an orphan, unless a run in another
		// base (a test's) owns it and is live.
		if dir, ok := indexed(run); ok {
			if other, err := Open(dir); err == nil {
				if st := other.State(); st.Live() {
					continue
				}
				if err := other.Teardown(grace); err != nil {
					errs = append(errs, fmt.Errorf("run %s: %w", run, err))
				} else {
					cleaned = append(cleaned, run)
				}
				continue
			}
		}
		if err := DeleteNamespaces(names); err != nil {
			errs = append(errs, err)
			continue
		}
		cleaned = append(cleaned, run)
	}
	return cleaned, errors.Join(errs...)
}

// IndexDir links every run ID to its directory, whatever base it is in, so
// that a cleanup in one base never mistakes another base's live run for
// leftovers.
const IndexDir = "/run/bgpfabric/sim-runs"

func index(id, dir string) error {
	if err := os.MkdirAll(IndexDir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	link := filepath.Join(IndexDir, id)
	_ = os.Remove(link)
	return os.Symlink(abs, link)
}

func indexed(id string) (string, bool) {
	dir, err := os.Readlink(filepath.Join(IndexDir, id))
	return dir, err == nil
}

func unindex(id string) { _ = os.Remove(filepath.Join(IndexDir, id)) }
