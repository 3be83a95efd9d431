// Package bfd implements Bidirectional Forwarding Detection in pure Go:
// RFC 5880 asynchronous mode over UDP, single hop (RFC 5881) and multihop
// (RFC 5883), for IPv4 and IPv6.
//
// A Server owns every session of a process. It opens one receiving socket
// per address family and port (3784, 4784) and one sending socket per
// family (source port in 49152–65535, TTL 255), reads each receiving
// socket with one goroutine (recvmmsg), and runs all sessions' timers from
// one goroutine with a heap ordered by deadline, which also sends every
// packet (sendmmsg, periodic packets gathered on a 5 ms grid): no
// goroutine or ticker per session, and receiving never waits for sending.
//
// The protocol itself lives in session.go (one session's variables and
// transitions, RFC 5880 §6.8) and engine.go (lookup, timers, dispatch),
// which do no I/O and read no clock, so tests drive them with a simulated
// network and clock. udp.go is the socket edge, server.go the concurrency.
//
// Not implemented: authentication (packets with the A bit are discarded,
// as RFC 5880 §6.8.6 requires of a session without authentication), demand
// mode (never requested; a peer's D bit is ignored and we keep sending),
// the echo function (we advertise Required Min Echo RX 0) and the passive
// role. See docs/bfd.md.
package bfd
