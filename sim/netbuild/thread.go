package netbuild

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
)

// Do runs fn on an OS thread that is inside ns, and returns its error.
// Sockets fn opens stay in ns after it returns, and processes fn starts
// (os/exec forks from the calling thread) begin life in ns. Goroutines fn
// starts do not run in ns.
func Do(ns netns.NsHandle, fn func() error) error {
	var fnErr error
	err := onFreshThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("entering namespace: %w", err)
		}
		fnErr = fn()
		return nil
	})
	return errors.Join(err, fnErr)
}

// newNamed creates a named namespace and runs setup inside it, on a thread
// of its own, and returns an open handle to it.
func newNamed(name string, setup func() error) (netns.NsHandle, error) {
	var h netns.NsHandle
	err := onFreshThread(func() error {
		var err error
		if h, err = netnsutil.NewNamed(name); err != nil {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
		if setup != nil {
			if err := setup(); err != nil {
				return fmt.Errorf("setting up namespace %s: %w", name, err)
			}
		}
		return nil
	})
	return h, err
}

// onFreshThread runs fn on a locked thread that is moved back to its
// namespace afterwards (netnsutil.OnThread).
func onFreshThread(fn func() error) error { return netnsutil.OnThread(fn) }

// sysctl writes a sysctl of the namespace the calling thread is in: files
// under /proc/sys/net belong to the namespace of the thread that opens them.
func sysctl(key, value string) error {
	p := filepath.Join("/proc/sys", filepath.FromSlash(key))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
