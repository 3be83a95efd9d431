package netnsutil_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// TestPrepareDirKeepsEarlierBinds plays what hid five test namespaces on a
// developer machine: a namespace bound in the directory, then iproute2's
// "bind the directory onto itself". prepareDir must leave the earlier bind
// reachable (so that it can be unmounted), and leave a mount point that
// iproute2 would not bind again. It runs in a mount namespace of its own on
// a thread that is thrown away afterwards, so the host's mounts are never
// touched.
func TestPrepareDirKeepsEarlierBinds(t *testing.T) {
	nstest.RequireRoot(t)
	dir := t.TempDir()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its mount namespace
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return err
			}
			if err := unix.Mount("", "/", "none", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return err
			}
			// A "namespace": any file bound onto a file in dir.
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "ns-a")
			for _, f := range []string{src, dst} {
				if err := os.WriteFile(f, nil, 0o444); err != nil {
					return err
				}
			}
			if err := unix.Mount(src, dst, "none", unix.MS_BIND, ""); err != nil {
				return err
			}
			if err := netnsutil.PrepareDir(dir); err != nil {
				t.Errorf("prepareDir: %v", err)
				return nil
			}
			if !isMountPoint(t, dir) {
				t.Errorf("%s is not a mount point after prepareDir: iproute2 would bind it again", dir)
			}
			if err := netnsutil.PrepareDir(dir); err != nil { // second call: already prepared
				t.Errorf("prepareDir again: %v", err)
			}
			if err := unix.Unmount(dst, unix.MNT_DETACH); err != nil {
				t.Errorf("the namespace bound before prepareDir cannot be unmounted: %v", err)
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// isMountPoint reports whether dir is the mount point of some mount in the
// calling thread's mount namespace.
func isMountPoint(t *testing.T, dir string) bool {
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var id, parent int
		var devs, root, point string
		if n, _ := fmt.Sscan(line, &id, &parent, &devs, &root, &point); n == 5 && point == dir {
			return true
		}
	}
	return false
}
