package cni

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
)

// inNS runs fn on a fresh OS thread that is inside ns, for what netlink
// handles cannot do from outside (writing /proc/sys/net, which belongs to
// the namespace of the thread that opens it).
func inNS(ns netns.NsHandle, fn func() error) error { return netnsutil.Do(ns, fn) }

// writeSysctl sets a /proc/sys value of the calling thread's namespace;
// name is relative to /proc/sys, with '/' separators.
func writeSysctl(name, value string) error {
	p := filepath.Join("/proc/sys", name)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("setting %s to %s: %w", p, value, err)
	}
	return nil
}
