// Package nstest gives privileged tests a fresh network namespace each and
// removes it when the test ends, also when it fails.
//
// It is the one place where bgpfabric's tests create namespaces (compare
// google/nftables internal/nftest): every namespace it makes is named
// NamePrefix plus a random suffix, so parallel test binaries never clash and
// anything left behind by a killed run is easy to spot with `ip netns list`.
// Nothing here touches the namespace the test runs in.
//
// Without root the tests skip, unless the environment variable CI is "true":
// then they fail, so that a CI job that lost its privileges cannot pass by
// skipping everything.
package nstest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
)

// NamePrefix starts the name of every namespace this package creates.
const NamePrefix = "bft-"

// RequireRoot skips tb when the process is not root, or fails it when the
// environment variable CI is "true". With -short it always skips: -short
// runs the unit tests that need neither root nor namespaces (make
// test-short), also as root.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("nstest: needs root and namespaces: not run with -short")
	}
	switch rootRule(os.Geteuid(), os.Getenv("CI")) {
	case mustSkip:
		tb.Skip("nstest: needs root (set CI=true to fail instead of skipping)")
	case mustFail:
		tb.Fatal("nstest: needs root, and CI=true forbids skipping")
	}
}

// SkipShort skips tb under -short (a long test: hold timers, many
// sessions, daemons), or fails it when the environment variable CI is
// "true", where nothing may skip.
func SkipShort(tb testing.TB, why string) {
	tb.Helper()
	if !testing.Short() {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s: not run with -short, and CI=true forbids skipping", why)
	}
	tb.Skip(why + ": not run with -short")
}

type verdict int

const (
	mayRun verdict = iota
	mustSkip
	mustFail
)

// rootRule is RequireRoot's decision, apart from the process state so that
// it can be tested without root.
func rootRule(euid int, ci string) verdict {
	switch {
	case euid == 0:
		return mayRun
	case ci == "true":
		return mustFail
	default:
		return mustSkip
	}
}

// NS is a named network namespace owned by one test.
type NS struct {
	// Name is the namespace's name, usable as `ip -n Name ...`.
	Name string
	// Handle is an open handle to the namespace.
	Handle netns.NsHandle
	// Netlink is a netlink handle whose sockets live in the namespace.
	Netlink *netlink.Handle

	closeOnce sync.Once
	closeErr  error
}

// New creates a fresh named network namespace with lo up and registers its
// removal with tb.Cleanup. It calls RequireRoot first.
func New(tb testing.TB) *NS {
	tb.Helper()
	RequireRoot(tb)
	sweepOnce.Do(sweep)
	ns, err := create()
	if err != nil {
		tb.Fatalf("nstest: %v", err)
	}
	tb.Cleanup(func() {
		if err := ns.Close(); err != nil {
			tb.Errorf("nstest: %v", err)
		}
	})
	return ns
}

// create makes the namespace on a locked thread of its own goroutine, so
// the caller's thread never changes namespace.
func create() (*NS, error) {
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s%d-%s", NamePrefix, os.Getpid(), hex.EncodeToString(suffix[:]))

	var handle netns.NsHandle
	err := netnsutil.OnThread(func() error {
		var err error
		handle, err = netnsutil.NewNamed(name) // moves this thread into it
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", name, err)
	}
	ns := &NS{Name: name, Handle: handle}
	if ns.Netlink, err = netlink.NewHandleAt(handle); err != nil {
		return nil, errors.Join(fmt.Errorf("netlink handle in %s: %w", name, err), ns.Close())
	}
	lo, err := ns.Netlink.LinkByName("lo")
	if err == nil {
		err = ns.Netlink.LinkSetUp(lo)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("setting lo up in %s: %w", name, err), ns.Close())
	}
	return ns, nil
}

// Close removes the namespace. The kernel frees it, with its links and
// routes, once no socket or process refers to it any more. Calling Close
// again returns the first result; tests need not call it, New registers it.
func (ns *NS) Close() error {
	ns.closeOnce.Do(func() {
		if ns.Netlink != nil {
			ns.Netlink.Close()
		}
		var errs []error
		if ns.Handle.IsOpen() {
			errs = append(errs, ns.Handle.Close())
		}
		if err := netns.DeleteNamed(ns.Name); err != nil {
			errs = append(errs, fmt.Errorf("deleting namespace %s: %w", ns.Name, err))
		}
		ns.closeErr = errors.Join(errs...)
	})
	return ns.closeErr
}

// Do runs fn on an OS thread that is inside the namespace and returns its
// error. Goroutines that fn starts do not run in the namespace.
func (ns *NS) Do(fn func() error) error {
	if err := netnsutil.Do(ns.Handle, fn); err != nil {
		return fmt.Errorf("in namespace %s: %w", ns.Name, err)
	}
	return nil
}
