package datastore

import (
	"errors"
	"fmt"
)

// Errors returned (wrapped, test them with errors.Is) by the Client.
var (
	// ErrNotFound: the resource does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: Create found the key already present.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the resourceVersion given to Update or Delete is stale.
	ErrConflict = errors.New("conflict: resource was modified (stale resourceVersion)")
	// ErrCompacted: a watch asked for revisions that etcd has compacted away;
	// the watcher must list again.
	ErrCompacted = errors.New("revision compacted")
	// ErrTooManyOps: ApplyAll was given more resources than one etcd
	// transaction may hold; nothing was written.
	ErrTooManyOps = errors.New("too many operations for one transaction")
)

// CompactedError is the error of a watch whose start revision was
// compacted. It wraps ErrCompacted.
type CompactedError struct {
	// Requested is the revision the watch wanted to start from.
	Requested int64
	// CompactRevision is the oldest revision etcd still has.
	CompactRevision int64
}

func (e *CompactedError) Error() string {
	if e.CompactRevision == 0 {
		return fmt.Sprintf("reading at revision %d: %v", e.Requested, ErrCompacted)
	}
	return fmt.Sprintf("watching from revision %d: %v (oldest available is %d)", e.Requested, ErrCompacted, e.CompactRevision)
}

// Unwrap makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Unwrap() error { return ErrCompacted }

// DecodeError is a stored value that does not decode into a resource. It
// names the key so that an operator can find and fix or delete the value.
type DecodeError struct {
	Key      string
	Revision int64
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decoding value of %s (mod revision %d): %v", e.Key, e.Revision, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }
