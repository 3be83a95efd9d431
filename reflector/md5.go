package reflector

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setMD5 installs (or, with an empty key, removes) the RFC 2385 TCP MD5
// key for peer on socket fd. v6Socket tells the socket's family, so that an
// IPv4 peer of a dual-stack socket is given as a v4-mapped address.
func setMD5(fd uintptr, peer netip.Addr, key string, v6Socket bool) error {
	return setMD5Prefix(fd, netip.PrefixFrom(peer, peer.BitLen()), key, v6Socket)
}

// setMD5Prefix is setMD5 for every peer address in a prefix: a prefix
// key (TCP_MD5SIG_EXT with TCP_MD5SIG_FLAG_PREFIX, Linux 4.13) unless the
// prefix is a single address.
func setMD5Prefix(fd uintptr, peers netip.Prefix, key string, v6Socket bool) error {
	if len(key) > unix.TCP_MD5SIG_MAXKEYLEN {
		return fmt.Errorf("TCP MD5 key for %v: longer than %d bytes", peers, unix.TCP_MD5SIG_MAXKEYLEN)
	}
	peer, bits := peers.Addr(), peers.Bits()
	var sig unix.TCPMD5Sig
	if v6Socket {
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sig.Addr))
		sa.Family = unix.AF_INET6
		sa.Addr = netip.AddrFrom16(peer.As16()).As16()
		if peer.Is4() {
			bits += 96
		}
	} else {
		if !peer.Is4() {
			return fmt.Errorf("TCP MD5 key for %v on an IPv4 socket", peers)
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sig.Addr))
		sa.Family = unix.AF_INET
		sa.Addr = peer.As4()
	}
	opt := unix.TCP_MD5SIG
	if peers.Bits() < peer.BitLen() {
		opt = unix.TCP_MD5SIG_EXT
		sig.Flags = unix.TCP_MD5SIG_FLAG_PREFIX
		sig.Prefixlen = uint8(bits)
	}
	sig.Keylen = uint16(len(key))
	copy(sig.Key[:], key)
	b := unsafe.Slice((*byte)(unsafe.Pointer(&sig)), unsafe.Sizeof(sig))
	if err := unix.SetsockoptString(int(fd), unix.IPPROTO_TCP, opt, string(b)); err != nil {
		return fmt.Errorf("setting TCP MD5 key for %v: %w", peers, err)
	}
	return nil
}

// md5Control returns a net.Dialer Control function that installs the key
// before connecting.
func md5Control(peer netip.Addr, key string) func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = setMD5(fd, peer, key, network == "tcp6")
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// setListenerMD5 installs or removes a peer's key on a listening socket.
func setListenerMD5(l *net.TCPListener, peer netip.Addr, key string) error {
	return setListenerMD5Prefix(l, netip.PrefixFrom(peer, peer.BitLen()), key)
}

// setListenerMD5Prefix installs or removes a key for every peer address
// in a prefix (a dynamic-neighbour range) on a listening socket.
func setListenerMD5Prefix(l *net.TCPListener, peers netip.Prefix, key string) error {
	la, _ := l.Addr().(*net.TCPAddr)
	v6 := la != nil && la.IP.To4() == nil
	peer := peers.Addr()
	if !v6 && !peer.Unmap().Is4() {
		return nil // an IPv6 peer cannot reach an IPv4 socket
	}
	if !v6 && peer.Is4In6() {
		peers = netip.PrefixFrom(peer.Unmap(), max(peers.Bits()-96, 0))
	}
	rc, err := l.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = setMD5Prefix(fd, peers, key, v6) }); err != nil {
		return err
	}
	return serr
}
