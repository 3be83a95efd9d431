package netbuild

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
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
		if h, err = netns.NewNamed(name); err != nil {
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

// onFreshThread runs fn in a goroutine locked to its OS thread and moves
// the thread back to the original namespace afterwards. If that fails, the
// thread stays locked and the runtime discards it when the goroutine ends,
// so no other goroutine ever runs in the wrong namespace.
func onFreshThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("getting current namespace: %w", err)
			return
		}
		defer orig.Close()
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("restoring namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// sysctl writes a sysctl of the namespace the calling thread is in: files
// under /proc/sys/net belong to the namespace of the thread that opens them.
func sysctl(key, value string) error {
	p := filepath.Join("/proc/sys", filepath.FromSlash(key))
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
