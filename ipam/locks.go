package ipam

import (
	"strconv"
	"sync"

	"github.com/bgpfabric/bgpfabric/api"
)

// keyedMutex hands out one mutex per key, freed when nobody holds or waits
// for it.
//
// The Client serializes, inside one process, the calls that would only
// race each other: AutoAssign per node (Calico's CNI takes a host-wide
// IPAM lock for the same reason) and every write per block. This only cuts
// the number of lost compare-and-swap races; correctness across processes
// and hosts still comes from the datastore's compare-and-swap.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
	// last is the newest version of the block this process has seen
	// (read-your-writes), or nil; guarded by mu.
	last *api.IPAMBlock
}

// lock locks key's mutex and returns its entry, to pass to unlock.
func (k *keyedMutex) lock(key string) *keyedEntry {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return e
}

func (k *keyedMutex) unlock(key string, e *keyedEntry) {
	e.mu.Unlock()
	k.mu.Lock()
	if e.refs--; e.refs == 0 {
		delete(k.m, key)
	}
	k.mu.Unlock()
}

// newer returns whichever of b and the entry's last version is newer.
func (e *keyedEntry) newer(b *api.IPAMBlock) *api.IPAMBlock {
	if e.last != nil && revision(e.last) > revision(b) {
		return e.last
	}
	return b
}

func revision(b *api.IPAMBlock) int64 {
	v, _ := strconv.ParseInt(b.ResourceVersion, 10, 64)
	return v
}
