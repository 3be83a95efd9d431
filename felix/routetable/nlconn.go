package routetable

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/internal/netnsutil"
)

// routeConn is a NETLINK_ROUTE socket in one namespace, non-blocking under
// the Go poller so that contexts can interrupt it.
type routeConn struct {
	f       *os.File
	raw     syscall.RawConn
	rcvbuf  int // bytes the kernel lets queue for us
	seq     uint32
	readBuf []byte
}

const (
	// wantRcvbuf is the receive buffer we ask for: room for the error
	// messages of a whole batch of failing routes.
	wantRcvbuf = 8 << 20
	// wantSndbuf bounds one sendmsg, that is one batch.
	wantSndbuf = 1 << 20
	// readTimeout bounds a wait for the kernel, which answers route
	// requests synchronously, when the context has no deadline.
	readTimeout = 30 * time.Second
)

// dialRoute opens the socket in ns, or in the caller's namespace when ns
// is not open (netns.None()).
func dialRoute(ns netns.NsHandle) (*routeConn, error) {
	var fd int
	err := inNamespace(ns, func() error {
		var err error
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	c, err := setupRoute(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return c, nil
}

func setupRoute(fd int) (*routeConn, error) {
	for _, o := range []struct {
		name  string
		level int
		opt   int
		v     int
	}{
		// Errors without the failed request's body, with the kernel's
		// message; dumps filtered in the kernel.
		{"NETLINK_CAP_ACK", unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1},
		{"NETLINK_EXT_ACK", unix.SOL_NETLINK, unix.NETLINK_EXT_ACK, 1},
		{"NETLINK_GET_STRICT_CHK", unix.SOL_NETLINK, unix.NETLINK_GET_STRICT_CHK, 1},
	} {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.v); err != nil {
			return nil, fmt.Errorf("netlink socket option %s: %w", o.name, err)
		}
	}
	// The FORCE variants pass the sysctl limits and need CAP_NET_ADMIN,
	// which programming routes needs anyway; fall back without it.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, wantRcvbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, wantRcvbuf)
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, wantSndbuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, wantSndbuf)
	}
	rcvbuf, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: reading SO_RCVBUF: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink socket: bind: %w", err)
	}
	f := os.NewFile(uintptr(fd), "rtnetlink")
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &routeConn{f: f, raw: raw, rcvbuf: rcvbuf, readBuf: make([]byte, 64<<10)}, nil
}

func (c *routeConn) close() error { return c.f.Close() }

// nextSeq returns the next n sequence numbers' first.
func (c *routeConn) nextSeq(n int) uint32 {
	first := c.seq + 1
	c.seq += uint32(n)
	return first
}

// send writes b, one or many messages, in one sendmsg.
func (c *routeConn) send(ctx context.Context, b []byte) error {
	if err := c.f.SetWriteDeadline(deadline(ctx)); err != nil {
		return err
	}
	var n int
	var opErr error
	err := c.raw.Write(func(fd uintptr) bool {
		n, opErr = unix.Write(int(fd), b)
		return opErr != unix.EAGAIN
	})
	switch {
	case err != nil:
		return fmt.Errorf("netlink send: %w", err)
	case opErr != nil:
		return fmt.Errorf("netlink send: %w", opErr)
	case n != len(b):
		return fmt.Errorf("netlink send: wrote %d of %d bytes", n, len(b))
	}
	return nil
}

// recv reads one datagram and calls fn with each of its messages from the
// kernel. The slice passed to fn is reused by the next recv.
func (c *routeConn) recv(ctx context.Context, fn func(nlMsg) error) error {
	if err := c.f.SetReadDeadline(deadline(ctx)); err != nil {
		return err
	}
	var n int
	var from unix.Sockaddr
	var opErr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, from, opErr = unix.Recvfrom(int(fd), c.readBuf, unix.MSG_TRUNC)
		return opErr != unix.EAGAIN
	})
	switch {
	case err != nil:
		return fmt.Errorf("netlink receive: %w", err)
	case opErr != nil:
		return fmt.Errorf("netlink receive: %w", opErr)
	case n > len(c.readBuf):
		return fmt.Errorf("netlink receive: message of %d bytes truncated to %d", n, len(c.readBuf))
	}
	if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
		return nil // not from the kernel
	}
	return splitMsgs(c.readBuf[:n], fn)
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(readTimeout)
}

// errLost marks routes whose result the kernel could not deliver because
// our receive buffer overflowed (ENOBUFS).
var errLost = errors.New("result lost: netlink receive buffer overflowed")

// inNamespace runs fn on a locked OS thread inside ns (netnsutil.Do), or
// directly when ns is not open.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	if !ns.IsOpen() {
		return fn()
	}
	return netnsutil.Do(ns, fn)
}
