package speakerproc

import (
	"net/netip"

	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// The protocol between the node (parent) and its speaker (child) runs on
// one unix stream socket (a socketpair; the child's end is its file
// descriptor 3) as two gob streams: requests from the parent, and from
// the child replies (ID of the request) interleaved with events (ID 0).
// The child serves requests one at a time, in order, so the parent's
// calls apply in the order it made them; events are written as the
// speaker produces them.

// Buffers of the channel's two gob streams. Every message is written and
// flushed at once, and gob hands a message to the writer in one Write, so
// a writer's buffer only has to hold a small message (a larger one is
// written past it); the parent's reader takes the child's event bursts
// (a peer's whole table after a restart) in reads of readBuffer. They
// were 64 KiB each, 128 KiB per process held for the child's life
// (docs/scale.md, "Routes in the node agent").
const (
	writeBuffer = 4 << 10
	readBuffer  = 16 << 10
	// requestReadBuffer is the child's: requests are few and small.
	requestReadBuffer = 4 << 10
)

// op is a request's operation: one per speaker.Speaker method.
type op uint8

const (
	opStart op = iota + 1
	opStop
	opAddPeer
	opUpdatePeer
	opDeletePeer
	opAddPeerRange
	opUpdatePeerRange
	opDeletePeerRange
	opSoftReset
	opAnnounce
	opWithdraw
	opPeers
	opRIB
	opResetPeer
)

var opNames = [...]string{
	opStart: "Start", opStop: "Stop", opAddPeer: "AddPeer", opUpdatePeer: "UpdatePeer",
	opDeletePeer: "DeletePeer", opAddPeerRange: "AddPeerRange", opUpdatePeerRange: "UpdatePeerRange",
	opDeletePeerRange: "DeletePeerRange", opSoftReset: "SoftReset", opAnnounce: "Announce",
	opWithdraw: "Withdraw", opPeers: "Peers", opRIB: "RIB", opResetPeer: "ResetPeer",
}

func (o op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "op?"
}

// request is one call of a speaker.Speaker method; only the fields of its
// op are set (gob sends no zero fields).
type request struct {
	ID       uint64
	Op       op
	Global   *speaker.Global
	Peer     *speaker.PeerConfig
	Range    *speaker.PeerRangeConfig
	Reset    bool
	In       bool
	Addr     netip.Addr
	Prefix   netip.Prefix
	Routes   []speaker.LocalRoute
	Prefixes []netip.Prefix
}

// message is a reply (ID set) or an event (ID 0: Best, Recv or Peer
// set).
type message struct {
	ID    uint64
	Err   string
	Peers []speaker.PeerStatus
	RIB   []speaker.Destination
	Best  []speaker.Destination
	Recv  []speaker.Received
	Peer  *speaker.PeerEvent
}
