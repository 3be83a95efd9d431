// Package probe sends real packets from inside a network namespace: ICMP
// echo (ping) and TCP connects, and listens for TCP inside a namespace.
// Sockets are opened on an OS thread inside the namespace and keep
// belonging to it afterwards, so only the open happens on a locked thread.
package probe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/sim/netbuild"
)

// Result is the outcome of one probe.
type Result struct {
	OK bool
	// RTT is the round trip (ping) or connect time (TCP).
	RTT time.Duration
	// Refused: the destination answered with a reset (TCP) — it was
	// reached but nothing listens, or a policy rejects.
	Refused bool
	Err     error
}

// Ping sends ICMP echo requests from ns to dst, one a second, until one is
// answered or ctx ends.
func Ping(ctx context.Context, ns netns.NsHandle, dst netip.Addr) Result {
	network, reqType, replyType := "ip4:icmp", byte(8), byte(0)
	if dst.Is6() && !dst.Is4In6() {
		network, reqType, replyType = "ip6:ipv6-icmp", 128, 129
	}
	var conn net.PacketConn
	err := netbuild.Do(ns, func() error {
		var err error
		conn, err = net.ListenPacket(network, "")
		return err
	})
	if err != nil {
		return Result{Err: fmt.Errorf("opening ICMP socket: %w", err)}
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()

	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	to := &net.IPAddr{IP: dst.AsSlice()}
	start := time.Now()
	sent := map[uint16]time.Time{}
	buf := make([]byte, 1500)
	for seq := uint16(1); ; seq++ {
		msg := echo(reqType, id, seq)
		sent[seq] = time.Now()
		if _, err := conn.WriteTo(msg, to); err != nil && ctx.Err() == nil {
			// Unreachable right now (no route yet): try again next second.
			_ = err
		}
		conn.SetReadDeadline(minTime(time.Now().Add(time.Second), deadline(ctx)))
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				break
			}
			src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
			if src.Unmap() != dst.Unmap() || n < 8 || buf[0] != replyType || binary.BigEndian.Uint16(buf[4:]) != id {
				continue
			}
			if t, ok := sent[binary.BigEndian.Uint16(buf[6:])]; ok {
				return Result{OK: true, RTT: time.Since(t)}
			}
		}
		if ctx.Err() != nil {
			return Result{Err: fmt.Errorf("no echo reply from %s in %s", dst, time.Since(start).Round(time.Millisecond))}
		}
	}
}

func deadline(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(time.Hour)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// echo builds an ICMP echo request. The checksum of ICMPv4 is ours to
// compute; the kernel computes ICMPv6's.
func echo(typ byte, id, seq uint16) []byte {
	b := make([]byte, 8+16)
	b[0] = typ
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	copy(b[8:], "bgpfabric-sim...")
	if typ == 8 {
		binary.BigEndian.PutUint16(b[2:], checksum(b))
	}
	return b
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

// TCP connects from ns to dst:port once, within ctx.
func TCP(ctx context.Context, ns netns.NsHandle, dst netip.Addr, port int) Result {
	var d net.Dialer
	var conn net.Conn
	start := time.Now()
	// The socket is created (and connects) on the namespace's thread.
	err := netbuild.Do(ns, func() error {
		var err error
		conn, err = d.DialContext(ctx, "tcp", net.JoinHostPort(dst.String(), strconv.Itoa(port)))
		return err
	})
	if err != nil {
		return Result{Refused: errors.Is(err, syscall.ECONNREFUSED), Err: err}
	}
	conn.Close()
	return Result{OK: true, RTT: time.Since(start)}
}

// listenIn opens a TCP listener on port, every address, inside ns.
func listenIn(ns netns.NsHandle, port int) (net.Listener, error) {
	var ln net.Listener
	err := netbuild.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", ":"+strconv.Itoa(port))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listening on port %d: %w", port, err)
	}
	return ln, nil
}

// Listen opens a TCP listener on port inside ns, on every address, that
// accepts and closes connections until ctx ends.
func Listen(ctx context.Context, ns netns.NsHandle, port int) error {
	ln, err := listenIn(ns, port)
	if err != nil {
		return err
	}
	context.AfterFunc(ctx, func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return nil
}
