package runstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The kernel's neighbour tables (ARP, NDISC) are global: the entries of
// every network namespace count against one hard limit, gc_thresh3
// (default 1024), which only the host's namespace can set. A fabric of a
// hundred nodes on one segment holds thousands of entries; beyond the
// limit the kernel fails to resolve neighbours and drops their packets
// ("neighbour table overflow", table_fulls in /proc/net/stat/arp_cache).
// In rr-2x98 that failed a quarter of the sampled pings of a converged
// fabric. So a run that needs more raises the limit, as Calico advises
// for large clusters, and the last such run to end puts back the value it
// found. The record of who holds the raise is host-wide, beside IndexDir,
// since runs of several bases share the kernel.

// NeighFile records the raise: the values found, the values set, and the
// runs that need them.
const NeighFile = "/run/bgpfabric/neigh-gc.json"

// neighSysctls are the hard limits of the IPv4 and IPv6 tables.
var neighSysctls = []string{
	"/proc/sys/net/ipv4/neigh/default/gc_thresh3",
	"/proc/sys/net/ipv6/neigh/default/gc_thresh3",
}

type neighRecord struct {
	Original map[string]int `json:"original"` // sysctl -> value before the first raise
	Set      map[string]int `json:"set"`      // sysctl -> value we wrote
	Holders  []string       `json:"holders"`  // run IDs that need the raise
}

// neighLimits does the work on files given to it, so that tests can use
// their own.
type neighLimits struct {
	file    string
	sysctls []string
	live    func(runID string) bool
}

var hostNeigh = neighLimits{file: NeighFile, sysctls: neighSysctls, live: runLive}

// runLive reports whether a run is live, in whatever base it is.
func runLive(runID string) bool {
	dir, ok := indexed(runID)
	if !ok {
		return false
	}
	r, err := Open(dir)
	if err != nil {
		return false
	}
	st := r.State()
	return st.Live()
}

// NeighChange is one limit a run raised.
type NeighChange struct {
	Sysctl   string
	From, To int
}

func (c NeighChange) String() string {
	return fmt.Sprintf("%s %d -> %d", strings.TrimPrefix(c.Sysctl, "/proc/sys/"), c.From, c.To)
}

// RaiseNeighLimit makes the kernel's neighbour tables hold at least need
// entries for the run runID. It returns what it changed (nothing when the
// limits are high enough already, but the run is then recorded as a holder
// if an earlier run raised them, so that they are not put back under it).
func RaiseNeighLimit(runID string, need int) ([]NeighChange, error) {
	return hostNeigh.raise(runID, need)
}

// ReleaseNeighLimit ends runID's need; when no live run needs a raise any
// more, the limits found before the first raise are put back (unless
// someone changed them since). Run.Teardown calls it.
func ReleaseNeighLimit(runID string) error { return hostNeigh.release(runID) }

func (n neighLimits) raise(runID string, need int) ([]NeighChange, error) {
	unlock, err := n.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err := n.read()
	if err != nil {
		return nil, err
	}
	var changes []NeighChange
	var errs []error
	for _, s := range n.sysctls {
		cur, err := readInt(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cur >= need {
			continue
		}
		if err := os.WriteFile(s, []byte(strconv.Itoa(need)), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("raising the kernel's neighbour table limit: %w", err))
			continue
		}
		if _, ok := rec.Original[s]; !ok {
			rec.Original[s] = cur
		}
		rec.Set[s] = need
		changes = append(changes, NeighChange{Sysctl: s, From: cur, To: need})
	}
	if len(rec.Original) > 0 && !slices.Contains(rec.Holders, runID) {
		rec.Holders = append(rec.Holders, runID)
	}
	if len(rec.Original) > 0 {
		if err := n.write(rec); err != nil {
			errs = append(errs, err)
		}
	}
	return changes, errors.Join(errs...)
}

func (n neighLimits) release(runID string) error {
	if _, err := os.Stat(n.file); errors.Is(err, os.ErrNotExist) {
		return nil // nothing raised: no lock file needed either
	}
	unlock, err := n.lock()
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := n.read()
	if err != nil || len(rec.Original) == 0 {
		return err
	}
	rec.Holders = slices.DeleteFunc(rec.Holders, func(id string) bool { return id == runID || !n.live(id) })
	if len(rec.Holders) > 0 {
		return n.write(rec)
	}
	var errs []error
	for s, orig := range rec.Original {
		cur, err := readInt(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if cur != rec.Set[s] {
			continue // changed by someone else since: theirs now
		}
		if err := os.WriteFile(s, []byte(strconv.Itoa(orig)), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring the kernel's neighbour table limit: %w", err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // keep the record: the next release retries
	}
	return os.Remove(n.file)
}

// lock holds an exclusive flock on the record's directory, so that no
// lock file is left behind.
func (n neighLimits) lock() (func(), error) {
	dir := filepath.Dir(n.file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
}

func (n neighLimits) read() (neighRecord, error) {
	rec := neighRecord{Original: map[string]int{}, Set: map[string]int{}}
	data, err := os.ReadFile(n.file)
	if errors.Is(err, os.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return rec, fmt.Errorf("%s: %w", n.file, err)
	}
	if rec.Original == nil {
		rec.Original = map[string]int{}
	}
	if rec.Set == nil {
		rec.Set = map[string]int{}
	}
	return rec, nil
}

func (n neighLimits) write(rec neighRecord) error {
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	tmp := n.file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, n.file)
}

func readInt(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}
