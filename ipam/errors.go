package ipam

import (
	"errors"
	"fmt"
	"strings"
)

// Errors of the package; test them with errors.Is.
var (
	// ErrExhausted: the pools have no free address for the node. The error
	// is an *ExhaustedError naming the pools.
	ErrExhausted = errors.New("exhausted")
	// ErrTooManyConflicts: a call lost more compare-and-swap races than
	// Config.MaxConflicts allows.
	ErrTooManyConflicts = errors.New("too many conflicting updates")
	// ErrNoPool: no pool may serve the request.
	ErrNoPool = errors.New("no usable pool")
	// ErrPoolNotFound: a requested pool does not exist.
	ErrPoolNotFound = errors.New("no such pool")
	// ErrNodeNotFound: the node has no Node resource, so its labels (for
	// pool nodeSelectors) are unknown.
	ErrNodeNotFound = errors.New("node is not registered (no Node resource)")
)

// ExhaustedError says which pools ran out of addresses.
type ExhaustedError struct {
	// Family is 4 or 6.
	Family int
	// Node is the node that asked.
	Node string
	// Pools are the names of the pools tried.
	Pools []string
	// Wanted and Got count addresses of the family.
	Wanted, Got int
}

func (e *ExhaustedError) Error() string {
	word := "pool"
	if len(e.Pools) > 1 {
		word = "pools"
	}
	return fmt.Sprintf("IPv%d %s %s exhausted: no free address for node %s (wanted %d, found %d)",
		e.Family, word, strings.Join(e.Pools, ", "), e.Node, e.Wanted, e.Got)
}

// Unwrap makes errors.Is(err, ErrExhausted) true.
func (e *ExhaustedError) Unwrap() error { return ErrExhausted }
