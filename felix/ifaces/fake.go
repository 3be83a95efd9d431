package ifaces

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// Fake is an in-memory Kernel with the semantics a Manager relies on: the
// sysctl files of an interface exist while the interface does (writes to
// others fail with fs.ErrNotExist), the global ones always; proxy entries
// need their interface and go away with it. Failures can be injected. It
// is safe for concurrent use.
type Fake struct {
	mu       sync.Mutex
	links    map[string]int // name → index
	sysctls  map[string]string
	proxies  map[fakeProxy]struct{}
	noIPv6   bool
	failures []error
	writes   int
}

type fakeProxy struct {
	index int
	addr  netip.Addr
}

// NewFake returns a Fake with no interfaces.
func NewFake() *Fake {
	return &Fake{links: map[string]int{}, sysctls: map[string]string{}, proxies: map[fakeProxy]struct{}{}}
}

// DisableIPv6 makes every IPv6 sysctl file missing, as in a namespace
// without IPv6.
func (f *Fake) DisableIPv6() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.noIPv6 = true
}

// AddLink creates an interface.
func (f *Fake) AddLink(name string, index int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.links[name] = index
}

// DeleteLink removes an interface with its settings and proxy entries.
func (f *Fake) DeleteLink(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	index, ok := f.links[name]
	if !ok {
		return
	}
	delete(f.links, name)
	for p := range f.sysctls {
		if ifaceOfPath(p) == name {
			delete(f.sysctls, p)
		}
	}
	for p := range f.proxies {
		if p.index == index {
			delete(f.proxies, p)
		}
	}
}

// FailNext makes the next Kernel call fail with err.
func (f *Fake) FailNext(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, err)
}

// Writes counts the sysctls written.
func (f *Fake) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Set changes a sysctl behind the Manager's back.
func (f *Fake) Set(path, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sysctls[path] = value
}

// Render returns the sysctls written, as "path = value" lines, and the
// proxy entries, as "proxy ADDR dev NAME" lines, sorted.
func (f *Fake) Render() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var lines []string
	for _, p := range slices.Sorted(maps.Keys(f.sysctls)) {
		lines = append(lines, p+" = "+f.sysctls[p])
	}
	names := map[int]string{}
	for n, i := range f.links {
		names[i] = n
	}
	var proxies []string
	for p := range f.proxies {
		proxies = append(proxies, fmt.Sprintf("proxy %s dev %s", p.addr, names[p.index]))
	}
	slices.Sort(proxies)
	return strings.Join(append(lines, proxies...), "\n")
}

// ifaceOfPath returns the interface a per-interface sysctl path names, or
// "" for a global one.
func ifaceOfPath(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) == 5 && (parts[2] == "conf" || parts[2] == "neigh") && parts[3] != "all" && parts[3] != "default" {
		return parts[3]
	}
	return ""
}

func (f *Fake) takeFailureLocked() error {
	if len(f.failures) == 0 {
		return nil
	}
	err := f.failures[0]
	f.failures = f.failures[1:]
	return err
}

// WriteSysctls implements Kernel.
func (f *Fake) WriteSysctls(_ context.Context, items []Sysctl) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailureLocked(); err != nil {
		return err
	}
	return writeAll(items, func(path, value string) error {
		if f.noIPv6 && strings.HasPrefix(path, "net/ipv6/") {
			return fs.ErrNotExist
		}
		if name := ifaceOfPath(path); name != "" {
			if _, ok := f.links[name]; !ok {
				return fs.ErrNotExist
			}
		}
		f.sysctls[path] = value
		f.writes++
		return nil
	})
}

func (f *Fake) linkExistsLocked(index int) bool {
	for _, i := range f.links {
		if i == index {
			return true
		}
	}
	return false
}

// AddProxyNeigh implements Kernel.
func (f *Fake) AddProxyNeigh(_ context.Context, index int, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailureLocked(); err != nil {
		return err
	}
	if !f.linkExistsLocked(index) {
		return syscall.ENODEV
	}
	f.proxies[fakeProxy{index, addr}] = struct{}{}
	return nil
}

// DelProxyNeigh implements Kernel.
func (f *Fake) DelProxyNeigh(_ context.Context, index int, addr netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.takeFailureLocked(); err != nil {
		return err
	}
	delete(f.proxies, fakeProxy{index, addr})
	return nil
}
