package routetable

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Fake is an in-memory Dataplane with the kernel's semantics for what a
// RouteTable does: adds fail with EEXIST on an occupied prefix, deletes match
// the protocol, routes need their link to exist (ENODEV) and be up
// (ENETDOWN), and a link that goes down or away takes its routes with it.
// It has one route per table and prefix (no metrics). Failures can be
// injected per op. It is safe for concurrent use.
type Fake struct {
	mu        sync.Mutex
	routes    map[fakeKey]KernelRoute
	links     map[string]Link
	nextIndex int
	failures  []fakeFailure
	listErr   error
	stats     FakeStats
}

type fakeKey struct {
	table uint32
	dst   netip.Prefix
}

type fakeFailure struct {
	kind OpKind
	dst  netip.Prefix
	err  error
}

// FakeStats counts the calls a Fake has served.
type FakeStats struct {
	Lists, Writes, Ops int
}

// NewFake returns a Fake with only lo (index 1, up).
func NewFake() *Fake {
	return &Fake{
		routes:    map[fakeKey]KernelRoute{},
		links:     map[string]Link{"lo": {Name: "lo", Index: 1, Up: true}},
		nextIndex: 2,
	}
}

// AddLink creates a link and returns its index.
func (f *Fake) AddLink(name string, up bool) Link {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := Link{Name: name, Index: f.nextIndex, Up: up}
	f.nextIndex++
	f.links[name] = l
	return l
}

// SetLinkUp changes a link's state; down flushes the routes through it.
func (f *Fake) SetLinkUp(name string, up bool) Link {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.links[name]
	l.Up = up
	f.links[name] = l
	if !up {
		f.flushLocked(l.Index)
	}
	return l
}

// DeleteLink removes a link and the routes through it.
func (f *Fake) DeleteLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.links[name]
	if !ok {
		return
	}
	delete(f.links, name)
	f.flushLocked(l.Index)
}

func (f *Fake) flushLocked(index int) {
	for k, r := range f.routes {
		if r.Type == TypeUnicast && usesLink(r, index) {
			delete(f.routes, k)
		}
	}
}

// usesLink reports whether r goes through the link with index. (The
// kernel keeps an IPv4 multipath route with its other next hops alive;
// the Fake drops the whole route, which a RouteTable then writes again.)
func usesLink(r KernelRoute, index int) bool {
	if r.LinkIndex == index {
		return true
	}
	for _, nh := range r.NextHops {
		if nh.LinkIndex == index {
			return true
		}
	}
	return false
}

// PutRoute writes r as someone else would: replacing whatever is there.
func (f *Fake) PutRoute(r KernelRoute) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes[fakeKey{r.Table, r.Dst}] = r
}

// RemoveRoute deletes the route on table and dst, whoever owns it.
func (f *Fake) RemoveRoute(table uint32, dst netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.routes, fakeKey{table, dst})
}

// FailNext makes the next op of kind on dst fail with err (an errno, as the
// kernel would return). An invalid dst matches any prefix.
func (f *Fake) FailNext(kind OpKind, dst netip.Prefix, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, fakeFailure{kind, dst, err})
}

// FailNextList makes the next ListRoutes or LinkList fail with err.
func (f *Fake) FailNextList(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listErr = err
}

// Stats returns the calls served so far.
func (f *Fake) Stats() FakeStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Render returns the routes as `ip route show table all` lines, IPv4 first,
// then by table and prefix.
func (f *Fake) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := map[int]string{}
	for _, l := range f.links {
		names[l.Index] = l.Name
	}
	routes := slices.Collect(maps.Values(f.routes))
	slices.SortFunc(routes, func(a, b KernelRoute) int {
		if a.Dst.Addr().Is4() != b.Dst.Addr().Is4() {
			if a.Dst.Addr().Is4() {
				return -1
			}
			return 1
		}
		if a.Table != b.Table {
			return int(a.Table) - int(b.Table)
		}
		return comparePrefix(a.Dst, b.Dst)
	})
	var b strings.Builder
	for _, r := range routes {
		b.WriteString(r.Format(func(i int) string { return names[i] }) + "\n")
	}
	return b.String()
}

func (f *Fake) takeListErrLocked() error {
	err := f.listErr
	f.listErr = nil
	return err
}

// ListRoutes implements Dataplane.
func (f *Fake) ListRoutes(ctx context.Context, table uint32, protocol uint8, fn func(KernelRoute)) error {
	f.mu.Lock()
	f.stats.Lists++
	if err := f.takeListErrLocked(); err != nil {
		f.mu.Unlock()
		return err
	}
	var out []KernelRoute
	for _, r := range f.routes {
		if r.Table == table && (protocol == 0 || r.Protocol == protocol) {
			out = append(out, r)
		}
	}
	f.mu.Unlock()
	for _, r := range out {
		fn(r)
	}
	return nil
}

// LinkList implements Dataplane.
func (f *Fake) LinkList(ctx context.Context) ([]Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Lists++
	if err := f.takeListErrLocked(); err != nil {
		return nil, err
	}
	return slices.Collect(maps.Values(f.links)), nil
}

// WriteRoutes implements Dataplane.
func (f *Fake) WriteRoutes(ctx context.Context, ops []RouteOp) []OpError {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats.Writes++
	f.stats.Ops += len(ops)
	var failed []OpError
	for i, op := range ops {
		if err := f.writeLocked(op); err != nil {
			failed = append(failed, OpError{Index: i, Err: err})
		}
	}
	return failed
}

func (f *Fake) writeLocked(op RouteOp) error {
	for i, fl := range f.failures {
		if fl.kind == op.Kind && (!fl.dst.IsValid() || fl.dst == op.Route.Dst) {
			f.failures = slices.Delete(f.failures, i, i+1)
			return fl.err
		}
	}
	r := op.Route
	key := fakeKey{r.Table, r.Dst}
	old, exists := f.routes[key]
	if op.Kind == OpDelete {
		if !exists || r.Protocol != 0 && old.Protocol != r.Protocol {
			return syscall.ESRCH
		}
		delete(f.routes, key)
		return nil
	}
	if op.Kind == OpAdd && exists {
		return syscall.EEXIST
	}
	indexes := []int{r.LinkIndex}
	for _, nh := range r.NextHops {
		indexes = append(indexes, nh.LinkIndex)
	}
	for _, index := range indexes {
		if index == 0 {
			continue
		}
		up, ok := false, false
		for _, l := range f.links {
			if l.Index == index {
				up, ok = l.Up, true
			}
		}
		switch {
		case !ok:
			return syscall.ENODEV
		case !up:
			return syscall.ENETDOWN
		}
	}
	r.NextHops = slices.Clone(r.NextHops)
	r.Multipath = len(r.NextHops) > 0
	f.routes[key] = r
	return nil
}
