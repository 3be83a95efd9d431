package netnsutil

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named namespaces are bound, as `ip netns` does.
const NetnsDir = "/run/netns"

var (
	dirOnce sync.Once
	dirErr  error
)

// NewNamed creates the named namespace name in NetnsDir and moves the
// calling (locked) thread into it, like netns.NewNamed, after making
// NetnsDir a shared mount point of its own the way iproute2 does.
//
// Why: `ip netns add` (run by a test peer's script, an operator or another
// tool) bind-mounts NetnsDir onto itself the first time it finds it is not
// a mount point. Namespaces bound before that are then hidden under the new
// mount: `ip netns delete` and our own cleanup see "not mounted" and the
// namespace lives until the next boot. With NetnsDir already a mount point,
// iproute2 leaves it alone, and every namespace stays reachable.
func NewNamed(name string) (netns.NsHandle, error) {
	dirOnce.Do(func() { dirErr = PrepareDir(NetnsDir) })
	if dirErr != nil {
		return netns.None(), fmt.Errorf("preparing %s: %w", NetnsDir, dirErr)
	}
	return netns.NewNamed(name)
}

// PrepareDir makes dir a recursive, shared mount point of its own, as
// iproute2's netns_add does: first try to mark it shared; if it is not a
// mount point (EINVAL), bind it onto itself (recursively, so that
// namespaces already bound there stay visible) and try again.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("marking it shared: %w", err)
	}
	if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding it onto itself: %w", err)
	}
	if err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("marking it shared: %w", err)
	}
	return nil
}
