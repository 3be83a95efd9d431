package policy

import (
	"strings"

	"github.com/bgpfabric/bgpfabric/api/selector"
)

// index matches endpoints against selectors incrementally, after Calico
// felix's label index. Items (selectors, by an ID of type I) that require a
// label value — an Equal or In at the top or in a top-level And — are
// indexed by that label; the others are evaluated against every endpoint.
// Endpoints are indexed by label so that a new item is evaluated only
// against the endpoints that could match it; only by the label keys that
// some indexed item requires, though: the labels no selector asks for
// (a workload's name, its node) would otherwise cost a map per endpoint
// and label, which at 300 endpoints was the largest part of a node
// agent's heap that grew with the fabric (docs/scale.md). An item that
// requires a key not indexed yet indexes the endpoints by it, once.
//
// An endpoint update evaluates the unindexed items, the items indexed by
// one of its labels and the items it matched before: its cost grows with the
// number of selectors that could match, not with the number of endpoints.
// Every change of a match calls onMatch.
type index[I comparable] struct {
	items     map[I]*ixItem
	endpoints map[EndpointKey]*ixEndpoint[I]
	// epsByLabel: label key → value → endpoints with that label, for
	// the keys of indexedKeys only.
	epsByLabel map[string]map[string]map[EndpointKey]struct{}
	// indexedKeys counts, per label key, the indexed items that require
	// it.
	indexedKeys map[string]int
	// itemsByLabel: label key → value → items that require it.
	itemsByLabel map[string]map[string]map[I]struct{}
	unindexed    map[I]struct{}
	onMatch      func(item I, ep EndpointKey, matched bool)
	// evals counts selector evaluations, for tests of incrementality.
	evals int
}

type ixItem struct {
	sel     *selector.Selector
	key     string // required label key, when indexed
	values  []string
	indexed bool
	members map[EndpointKey]struct{}
}

type ixEndpoint[I comparable] struct {
	labels  map[string]string
	matches map[I]struct{}
}

func newIndex[I comparable](onMatch func(I, EndpointKey, bool)) *index[I] {
	return &index[I]{
		items:        map[I]*ixItem{},
		endpoints:    map[EndpointKey]*ixEndpoint[I]{},
		epsByLabel:   map[string]map[string]map[EndpointKey]struct{}{},
		indexedKeys:  map[string]int{},
		itemsByLabel: map[string]map[string]map[I]struct{}{},
		unindexed:    map[I]struct{}{},
		onMatch:      onMatch,
	}
}

// SetItem adds an item or changes its selector.
func (x *index[I]) SetItem(id I, sel *selector.Selector) {
	old := x.items[id]
	if old != nil && old.sel.String() == sel.String() {
		return
	}
	it := &ixItem{sel: sel, members: map[EndpointKey]struct{}{}}
	it.key, it.values, it.indexed = requiredLabel(sel.Expr())
	if it.indexed {
		// Before the old item lets go of its key: the same key is not
		// indexed again.
		x.useKey(it.key)
	}
	if old != nil {
		x.unindexItem(id, old)
		it.members = old.members
	}
	x.items[id] = it
	if it.indexed {
		for _, v := range it.values {
			addTo3(x.itemsByLabel, it.key, v, id)
		}
	} else {
		x.unindexed[id] = struct{}{}
	}
	// Candidates: the endpoints that could match, and the members so far.
	check := func(k EndpointKey) {
		ep := x.endpoints[k]
		x.evals++
		_, was := it.members[k]
		if now := sel.Evaluate(ep.labels); now != was {
			x.setMatch(id, it, k, ep, now)
		}
	}
	for k := range it.members {
		check(k)
	}
	if !it.indexed {
		for k := range x.endpoints {
			if _, done := it.members[k]; !done {
				check(k)
			}
		}
		return
	}
	for _, v := range it.values {
		for k := range x.epsByLabel[it.key][v] {
			if _, done := it.members[k]; !done {
				check(k)
			}
		}
	}
}

// RemoveItem removes an item; its matches are reported as ended.
func (x *index[I]) RemoveItem(id I) {
	it := x.items[id]
	if it == nil {
		return
	}
	for k := range it.members {
		x.setMatch(id, it, k, x.endpoints[k], false)
	}
	x.unindexItem(id, it)
	delete(x.items, id)
}

func (x *index[I]) unindexItem(id I, it *ixItem) {
	if !it.indexed {
		delete(x.unindexed, id)
		return
	}
	for _, v := range it.values {
		delFrom3(x.itemsByLabel, it.key, v, id)
	}
	if x.indexedKeys[it.key]--; x.indexedKeys[it.key] <= 0 {
		delete(x.indexedKeys, it.key)
		delete(x.epsByLabel, it.key)
	}
}

// useKey counts an indexed item that requires label key lk, and indexes
// the endpoints by lk if no item did before.
func (x *index[I]) useKey(lk string) {
	if x.indexedKeys[lk]++; x.indexedKeys[lk] > 1 {
		return
	}
	for k, ep := range x.endpoints {
		if lv, ok := ep.labels[lk]; ok {
			addTo3(x.epsByLabel, lk, lv, k)
		}
	}
}

// indexLabels adds (add) or removes endpoint k under those of its labels
// whose keys are indexed.
func (x *index[I]) indexLabels(k EndpointKey, labels map[string]string, add bool) {
	if len(x.indexedKeys) < len(labels) {
		for lk := range x.indexedKeys {
			if lv, ok := labels[lk]; ok {
				x.indexLabel(k, lk, lv, add)
			}
		}
		return
	}
	for lk, lv := range labels {
		if x.indexedKeys[lk] > 0 {
			x.indexLabel(k, lk, lv, add)
		}
	}
}

func (x *index[I]) indexLabel(k EndpointKey, lk, lv string, add bool) {
	if add {
		addTo3(x.epsByLabel, lk, lv, k)
	} else {
		delFrom3(x.epsByLabel, lk, lv, k)
	}
}

// SetEndpoint adds an endpoint or changes its labels. The index keeps
// labels; the caller must not modify the map afterwards.
func (x *index[I]) SetEndpoint(k EndpointKey, labels map[string]string) {
	ep := x.endpoints[k]
	if ep == nil {
		ep = &ixEndpoint[I]{matches: map[I]struct{}{}}
		x.endpoints[k] = ep
	} else {
		if mapsEqual(ep.labels, labels) {
			return
		}
		x.indexLabels(k, ep.labels, false)
	}
	ep.labels = labels
	x.indexLabels(k, labels, true)
	seen := make(map[I]struct{}, len(ep.matches))
	check := func(id I) {
		if _, done := seen[id]; done {
			return
		}
		seen[id] = struct{}{}
		it := x.items[id]
		x.evals++
		_, was := ep.matches[id]
		if now := it.sel.Evaluate(labels); now != was {
			x.setMatch(id, it, k, ep, now)
		}
	}
	for id := range ep.matches {
		check(id)
	}
	for id := range x.unindexed {
		check(id)
	}
	for lk, lv := range labels {
		for id := range x.itemsByLabel[lk][lv] {
			check(id)
		}
	}
}

// RemoveEndpoint removes an endpoint; its matches are reported as ended.
func (x *index[I]) RemoveEndpoint(k EndpointKey) {
	ep := x.endpoints[k]
	if ep == nil {
		return
	}
	for id := range ep.matches {
		x.setMatch(id, x.items[id], k, ep, false)
	}
	x.indexLabels(k, ep.labels, false)
	delete(x.endpoints, k)
}

// Members returns the endpoints an item matches (read only).
func (x *index[I]) Members(id I) map[EndpointKey]struct{} {
	if it := x.items[id]; it != nil {
		return it.members
	}
	return nil
}

// Matches returns the items an endpoint matches (read only).
func (x *index[I]) Matches(k EndpointKey) map[I]struct{} {
	if ep := x.endpoints[k]; ep != nil {
		return ep.matches
	}
	return nil
}

func (x *index[I]) setMatch(id I, it *ixItem, k EndpointKey, ep *ixEndpoint[I], now bool) {
	if now {
		it.members[k] = struct{}{}
		ep.matches[id] = struct{}{}
	} else {
		delete(it.members, k)
		delete(ep.matches, id)
	}
	x.onMatch(id, k, now)
}

// requiredLabel returns a label key and values one of which every
// matching label set has, if the expression requires one.
func requiredLabel(e selector.Expr) (key string, values []string, ok bool) {
	switch e := e.(type) {
	case selector.Equal:
		return e.Key, []string{e.Value}, true
	case selector.In:
		return e.Key, e.Values, true
	case selector.And:
		best := -1
		for _, x := range e.Exprs {
			k, vs, ok2 := requiredLabel(x)
			if !ok2 {
				continue
			}
			// Prefer user labels to the reserved ones (a namespace is
			// less selective), then fewer values.
			score := len(vs)
			if strings.HasPrefix(k, ReservedLabelPrefix) {
				score += 1 << 20
			}
			if best < 0 || score < best {
				best, key, values, ok = score, k, vs, true
			}
		}
	}
	return key, values, ok
}

func addTo3[K comparable](m map[string]map[string]map[K]struct{}, a, b string, k K) {
	mb := m[a]
	if mb == nil {
		mb = map[string]map[K]struct{}{}
		m[a] = mb
	}
	mk := mb[b]
	if mk == nil {
		mk = map[K]struct{}{}
		mb[b] = mk
	}
	mk[k] = struct{}{}
}

func delFrom3[K comparable](m map[string]map[string]map[K]struct{}, a, b string, k K) {
	mb := m[a]
	mk := mb[b]
	delete(mk, k)
	if len(mk) == 0 {
		delete(mb, b)
		if len(mb) == 0 {
			delete(m, a)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
