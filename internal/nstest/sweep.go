package nstest

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vishvananda/netns"
)

// netnsDir is where named namespaces are bound (as `ip netns` does).
const netnsDir = "/run/netns"

var sweepOnce sync.Once

// sweep removes the namespaces that test processes which no longer exist
// left behind (a test binary killed with SIGKILL cannot run its cleanups).
// A name carries its creator's PID (NamePrefix + PID + "-" + random), and
// only names whose PID is not a running process are removed, so the
// namespaces of test binaries running in parallel are never touched.
func sweep() {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, ok := ownerPID(e.Name())
		if !ok || pid == os.Getpid() || alive(pid) {
			continue
		}
		netns.DeleteNamed(e.Name())
	}
}

// ownerPID returns the PID in a name this package made.
func ownerPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, NamePrefix)
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// alive reports whether a process with this PID exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
