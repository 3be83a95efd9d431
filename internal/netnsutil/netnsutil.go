// Package netnsutil runs code inside a network namespace safely: on a
// fresh OS thread that is locked for the duration and moved back
// afterwards, so no other goroutine ever runs in the wrong namespace.
package netnsutil

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn inside ns (see OnThread) and returns fn's error. Goroutines
// that fn starts do not run in ns; processes that fn starts do (a child
// inherits its thread's namespace).
func Do(ns netns.NsHandle, fn func() error) error {
	return OnThread(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("entering network namespace: %w", err)
		}
		return fn()
	})
}

// OnThread runs fn on a new goroutine locked to its OS thread, which fn may
// move into another namespace (netns.Set, netns.NewNamed), and returns fn's
// error. The thread is moved back to its original namespace afterwards; if
// it cannot be, it stays locked and the Go runtime discards it when the
// goroutine ends.
func OnThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("getting the current network namespace: %w", err)
			return
		}
		defer orig.Close()
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("restoring the network namespace: %w", err))
			return // still locked: the thread is discarded
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}
