package routetable

import (
	"context"
	"fmt"
	"net/netip"
)

// Dataplane is the kernel side of a RouteTable: NetlinkDataplane in
// production, Fake in unit tests. Errors for single routes are the
// kernel's errnos (syscall.Errno, possibly wrapped), so that callers can
// test them with errors.Is.
type Dataplane interface {
	// ListRoutes calls fn with each IPv4 and IPv6 route in table that
	// carries protocol, or with all of the table's routes when protocol is
	// 0. It streams rather than returns a slice, so that listing a
	// hundred thousand routes allocates next to nothing. After an error,
	// fn may have seen part of the routes.
	ListRoutes(ctx context.Context, table uint32, protocol uint8, fn func(KernelRoute)) error
	// WriteRoutes performs ops and returns the ones that failed, in
	// order. A failed op does not stop the others.
	WriteRoutes(ctx context.Context, ops []RouteOp) []OpError
	// LinkList returns the network interfaces.
	LinkList(ctx context.Context) ([]Link, error)
}

// OpKind is what a RouteOp does.
type OpKind uint8

const (
	// OpAdd creates a route and fails with EEXIST when any route,
	// whatever its protocol, holds the same table, prefix and metric.
	OpAdd OpKind = iota + 1
	// OpReplace creates a route or replaces the one on its table, prefix
	// and metric. RouteTable only replaces routes it knows are its own.
	OpReplace
	// OpDelete deletes the route on the table and prefix that carries
	// the op's protocol (and metric, when not 0); it fails with ESRCH
	// when there is none.
	OpDelete
)

func (k OpKind) String() string {
	switch k {
	case OpAdd:
		return "adding"
	case OpReplace:
		return "replacing"
	case OpDelete:
		return "deleting"
	}
	return "op?"
}

// RouteOp is one change to a kernel route.
type RouteOp struct {
	Kind  OpKind
	Route KernelRoute
}

// OpError is the failure of ops[Index] in a WriteRoutes call.
type OpError struct {
	Index int
	Err   error
}

// Link is a network interface as a RouteTable needs to know it.
type Link struct {
	Name  string
	Index int
	// Up is the administrative state (IFF_UP): the kernel refuses routes
	// through a link that is down and flushes them when it goes down.
	Up bool
}

// LinkUpdate is a change of one link, as WatchLinks delivers it.
type LinkUpdate struct {
	Link
	// Deleted is set when the link is gone.
	Deleted bool
}

// ConflictError says that a foreign route (one with another protocol)
// holds a prefix that the RouteTable wants. The RouteTable leaves it alone
// and tries again on the next Resync.
type ConflictError struct {
	Dst      netip.Prefix
	Table    uint32
	Protocol uint8 // the foreign route's protocol
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("route %s in table %d belongs to protocol %d, not to us: leaving it alone",
		e.Dst, e.Table, e.Protocol)
}
