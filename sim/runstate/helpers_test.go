package runstate

import (
	"runtime"

	"github.com/vishvananda/netns"
)

// newNamedForTest creates a named namespace from a throw-away thread.
func newNamedForTest(name string) (netns.NsHandle, error) {
	type res struct {
		h   netns.NsHandle
		err error
	}
	c := make(chan res)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		h, err := netns.NewNamed(name)
		c <- res{h, err}
	}()
	r := <-c
	return r.h, r.err
}
