package reflector

import (
	"errors"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ttlPolicy is what a session's socket is given: the TTL (IPv6: hop
// limit) of the packets we send, 0 for the kernel's default, and the
// least TTL we accept, 0 for any.
type ttlPolicy struct{ ttl, minTTL int }

// ttlFor returns the policy of neighbour n of a reflector in AS localASN:
//   - TTLSecurity N (GTSM, RFC 5082): send with 255, accept only 256-N
//     and up, so that a packet from further than N hops, whose TTL the
//     routers on the way have decremented, is dropped by the kernel;
//   - eBGP: send with EBGPMultihop, else 1 (a directly connected
//     neighbour, as BIRD and FRR default to);
//   - iBGP: the kernel's default.
func ttlFor(n NeighborConfig, localASN uint32) ttlPolicy {
	switch {
	case n.TTLSecurity > 0:
		return ttlPolicy{ttl: 255, minTTL: 256 - int(n.TTLSecurity)}
	case n.ASN == localASN:
		return ttlPolicy{}
	case n.EBGPMultihop > 0:
		return ttlPolicy{ttl: int(n.EBGPMultihop)}
	}
	return ttlPolicy{ttl: 1}
}

// apply sets the policy on socket fd. An IPv6 socket gets the IPv6
// options, and the IPv4 ones too when the peer is IPv4 (v4-mapped on a
// dual-stack socket), since its packets are IPv4 packets. With reset, the
// zero values are written too (the kernel's default TTL, no minimum):
// an accepted socket inherits the listener's TTL of 255 (see
// listenerTTL), which only GTSM sessions keep.
func (p ttlPolicy) apply(fd int, peerIs4, reset bool) error {
	if p == (ttlPolicy{}) && !reset {
		return nil
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("socket domain: %w", err)
	}
	ttl := p.ttl
	if ttl == 0 {
		ttl = -1 // the kernel's default (net.ipv4.ip_default_ttl, hop_limit)
	}
	var errs []error
	set := func(level, opt, v int, name string, skip bool) {
		if skip && !reset {
			return
		}
		if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
			errs = append(errs, fmt.Errorf("setting %s to %d: %w", name, v, err))
		}
	}
	if domain == unix.AF_INET6 {
		set(unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ttl, "IPV6_UNICAST_HOPS", p.ttl == 0)
		set(unix.IPPROTO_IPV6, unix.IPV6_MINHOPCOUNT, p.minTTL, "IPV6_MINHOPCOUNT", p.minTTL == 0)
	}
	if domain == unix.AF_INET || peerIs4 {
		set(unix.IPPROTO_IP, unix.IP_TTL, ttl, "IP_TTL", p.ttl == 0)
		set(unix.IPPROTO_IP, unix.IP_MINTTL, p.minTTL, "IP_MINTTL", p.minTTL == 0)
	}
	return errors.Join(errs...)
}

// applyConn sets the policy on an accepted connection, before anything is
// read from it. (The SYN was accepted by the listener, which every
// neighbour shares; what the peer sends from now on is checked. FRR does
// the same.)
func (p ttlPolicy) applyConn(c net.Conn, peerIs4 bool) error {
	return control(c, func(fd int) error { return p.apply(fd, peerIs4, true) })
}

// listenerTTL makes a listener answer connections (SYN-ACK) with TTL
// 255, as GTSM peers require of us (RFC 5082 3: they check it on our
// replies as on everything else); it is harmless for the others, whose
// accepted sockets get their own TTL (applyConn).
func listenerTTL(l *net.TCPListener) error {
	v6 := false
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		v6 = a.IP.To4() == nil
	}
	return control(l, func(fd int) error {
		var errs []error
		if v6 {
			errs = append(errs, unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 255))
		}
		// IPv4 peers of a dual-stack socket too.
		errs = append(errs, unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, 255))
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("listener %v: setting TTL 255: %w", l.Addr(), err)
		}
		return nil
	})
}

// control runs fn on the socket of c.
func control(c any, fn func(fd int) error) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no socket", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// dialControl returns the net.Dialer Control function of an active
// connection to n: the TCP MD5 key and the TTL policy, both set before
// the SYN goes out.
func dialControl(n NeighborConfig, p ttlPolicy) func(network, address string, c syscall.RawConn) error {
	if n.Password == "" && p == (ttlPolicy{}) {
		return nil
	}
	return func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if n.Password != "" {
				if serr = setMD5(fd, n.Address, n.Password, network == "tcp6"); serr != nil {
					return
				}
			}
			serr = p.apply(int(fd), n.Address.Is4(), false)
		})
		if err != nil {
			return err
		}
		return serr
	}
}
