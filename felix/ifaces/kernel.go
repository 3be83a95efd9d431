package ifaces

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Kernel is what a Manager needs of the kernel: NetlinkKernel in
// production, Fake in tests.
type Kernel interface {
	// WriteSysctls writes the settings (skipping optional ones whose file
	// is missing) and returns every failure; one does not stop the others.
	WriteSysctls(ctx context.Context, items []Sysctl) error
	// AddProxyNeigh makes the host answer neighbour solicitations (IPv6)
	// or ARP requests (IPv4) for addr on the interface with index
	// ifindex. Adding an entry that exists succeeds.
	AddProxyNeigh(ctx context.Context, ifindex int, addr netip.Addr) error
	// DelProxyNeigh removes such an entry; removing one that does not
	// exist succeeds.
	DelProxyNeigh(ctx context.Context, ifindex int, addr netip.Addr) error
}

// NetlinkKernel is the Kernel of one network namespace: sysctls through
// /proc/sys on a thread inside the namespace, neighbour entries through a
// netlink socket opened there. Its methods must not be called
// concurrently (one owner), and not after Close.
type NetlinkKernel struct {
	th *nsThread
	nl *netlink.Handle
}

// NewNetlinkKernel opens a NetlinkKernel for namespace ns, or for the
// caller's namespace when ns is not open (netns.None()).
func NewNetlinkKernel(ns netns.NsHandle) (*NetlinkKernel, error) {
	th, err := startNSThread(ns)
	if err != nil {
		return nil, err
	}
	var h *netlink.Handle
	if ns.IsOpen() {
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	}
	if err != nil {
		th.close()
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return &NetlinkKernel{th: th, nl: h}, nil
}

// Close stops the namespace thread and closes the netlink socket.
func (k *NetlinkKernel) Close() error {
	k.th.close()
	k.nl.Close()
	return nil
}

// WriteSysctls implements Kernel: every file is opened by the namespace
// thread, in one visit.
func (k *NetlinkKernel) WriteSysctls(ctx context.Context, items []Sysctl) error {
	return k.th.do(ctx, func() error { return writeAll(items, writeProcSys) })
}

// writeProcSys writes value to /proc/sys/path. It must run on a thread in
// the target namespace: the file is resolved in the opener's namespace.
func writeProcSys(path, value string) error {
	f, err := os.OpenFile("/proc/sys/"+path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(value))
	return errors.Join(err, f.Close())
}

func proxyNeigh(ifindex int, addr netip.Addr) *netlink.Neigh {
	family := unix.AF_INET6
	if addr.Is4() {
		family = unix.AF_INET
	}
	return &netlink.Neigh{LinkIndex: ifindex, Family: family, Flags: netlink.NTF_PROXY, IP: net.IP(addr.AsSlice())}
}

// AddProxyNeigh implements Kernel.
func (k *NetlinkKernel) AddProxyNeigh(ctx context.Context, ifindex int, addr netip.Addr) error {
	if err := k.nl.NeighSet(proxyNeigh(ifindex, addr)); err != nil {
		return fmt.Errorf("adding proxy neighbour %s on interface %d: %w", addr, ifindex, err)
	}
	return nil
}

// DelProxyNeigh implements Kernel.
func (k *NetlinkKernel) DelProxyNeigh(ctx context.Context, ifindex int, addr netip.Addr) error {
	err := k.nl.NeighDel(proxyNeigh(ifindex, addr))
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting proxy neighbour %s on interface %d: %w", addr, ifindex, err)
	}
	return nil
}

// nsThread is a goroutine locked to an OS thread that has entered a network
// namespace; it runs the functions given to do. The thread never returns
// to the process's namespace: when the goroutine ends still locked, the Go
// runtime terminates the thread, so no other goroutine ever runs in the
// wrong namespace.
type nsThread struct {
	reqs chan func()
	done chan struct{}
}

func startNSThread(ns netns.NsHandle) (*nsThread, error) {
	t := &nsThread{reqs: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(t.done)
		runtime.LockOSThread()
		if ns.IsOpen() {
			if err := netns.Set(ns); err != nil {
				errc <- fmt.Errorf("entering network namespace: %w", err)
				return // still locked: the thread is discarded
			}
		} else {
			defer runtime.UnlockOSThread()
		}
		errc <- nil
		for f := range t.reqs {
			f()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return t, nil
}

// do runs f on the namespace thread and returns its error.
func (t *nsThread) do(ctx context.Context, f func() error) error {
	res := make(chan error, 1)
	select {
	case t.reqs <- func() { res <- f() }:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-res
}

func (t *nsThread) close() {
	close(t.reqs)
	<-t.done
}
