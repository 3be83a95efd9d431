package nft

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
)

// Netlink is the real Dataplane: it talks nftables over netlink in one
// network namespace, to one table of family inet. Each Commit is one
// netlink batch, which the kernel applies as one transaction.
type Netlink struct {
	table string
	netns int
	buf   int
}

// NetlinkConfig configures a Netlink dataplane.
type NetlinkConfig struct {
	// Table is the table's name (default "bgpfabric").
	Table string
	// NetNS is a file descriptor of the network namespace to program; 0 is
	// the namespace of the calling thread when Commit dials. The caller
	// keeps it open while the dataplane is in use.
	NetNS int
	// SocketBuffer is the netlink socket's send and receive buffer size
	// (default 64 MiB). A transaction must fit in one send, and the
	// kernel's acknowledgements (one per message) in the receive buffer.
	SocketBuffer int
}

// NewNetlink returns a Netlink dataplane.
func NewNetlink(cfg NetlinkConfig) *Netlink {
	if cfg.Table == "" {
		cfg.Table = "bgpfabric"
	}
	if cfg.SocketBuffer == 0 {
		cfg.SocketBuffer = 64 << 20
	}
	return &Netlink{table: cfg.Table, netns: cfg.NetNS, buf: cfg.SocketBuffer}
}

// elementChunk bounds the elements per netlink message: the element list
// is one attribute, whose length is 16 bits.
const elementChunk = 512

// Commit implements Dataplane.
func (n *Netlink) Commit(ctx context.Context, ops []Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// The nftables library asks for an acknowledgement of every message
	// and reads them one by one (two syscalls each); for a transaction of
	// tens of thousands of rules that is most of the time. So we let it
	// marshal the batch into a test connection (send), put the batch on
	// the wire ourselves in one send without the acknowledgement and echo
	// flags (marshalBatch), and hand the library the acknowledgements it
	// expects.
	s := &sender{n: n, ctx: ctx}
	conn, err := nftables.New(nftables.WithTestDial(s.send))
	if err != nil {
		return fmt.Errorf("nftables connection: %w", err)
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyINet, Name: n.table}
	accept := nftables.ChainPolicyAccept
	for i, op := range ops {
		var err error
		switch op.Kind {
		case OpReplaceTable:
			// Adding first makes the delete succeed whether or not the
			// table exists; the whole batch is one transaction.
			conn.AddTable(tbl)
			conn.DelTable(tbl)
			conn.AddTable(tbl)
		case OpAddChain:
			c := &nftables.Chain{Name: op.Chain.Name, Table: tbl}
			if h := op.Chain.Hook; h != nil {
				c.Type, c.Policy = nftables.ChainTypeFilter, &accept
				c.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(h.Priority))
				switch h.Name {
				case "forward":
					c.Hooknum = nftables.ChainHookForward
				case "input":
					c.Hooknum = nftables.ChainHookInput
				case "output":
					c.Hooknum = nftables.ChainHookOutput
				default:
					return fmt.Errorf("op %d: unknown hook %q", i, h.Name)
				}
			}
			conn.AddChain(c)
		case OpFlushChain:
			conn.FlushChain(&nftables.Chain{Name: op.Chain.Name, Table: tbl})
		case OpDelChain:
			conn.DelChain(&nftables.Chain{Name: op.Chain.Name, Table: tbl})
		case OpAddRule:
			conn.AddRule(&nftables.Rule{Table: tbl, Chain: &nftables.Chain{Name: op.Chain.Name, Table: tbl}, Exprs: op.Rule.Exprs})
		case OpAddSet:
			s := nftSet(tbl, op.Set)
			first, rest := chunk(op.Elements)
			if err = conn.AddSet(s, nftElements(first)); err == nil {
				err = addElements(conn, s, rest)
			}
		case OpDelSet:
			conn.DelSet(nftSet(tbl, op.Set))
		case OpAddElements:
			err = addElements(conn, nftSet(tbl, op.Set), op.Elements)
		case OpDelElements:
			s := nftSet(tbl, op.Set)
			for es := op.Elements; len(es) > 0 && err == nil; {
				var c []Element
				c, es = chunk(es)
				err = conn.SetDeleteElements(s, nftElements(c))
			}
		default:
			err = fmt.Errorf("unknown op %d", op.Kind)
		}
		if err != nil {
			return fmt.Errorf("op %d (%s): %w", i, op.Kind, err)
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables transaction of %d ops: %w", len(ops), err)
	}
	if s.err != nil {
		return fmt.Errorf("nftables transaction of %d ops: %w", len(ops), s.err)
	}
	return nil
}

// sender is the nftables library's (test) connection: it sends batches
// over a real netlink socket in the namespace.
type sender struct {
	n   *Netlink
	ctx context.Context
	err error // of the batch
}

// ack is a successful acknowledgement (NLMSG_ERROR with errno 0).
var ack = netlink.Message{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 20)}

const (
	nfnlSubsysNftables = 10   // NFNL_SUBSYS_NFTABLES
	nftMsgGetGen       = 0x10 // NFT_MSG_GETGEN
)

func (s *sender) send(req []netlink.Message) ([]netlink.Message, error) {
	if req == nil || s.err != nil {
		return []netlink.Message{ack}, nil // the next acknowledgement
	}
	s.err = s.sendBatch(req)
	return []netlink.Message{ack}, nil
}

// sendBatch sends a batch without acknowledgement flags, so the kernel
// answers only failures, then a GETGEN request whose answer comes after
// every answer to the batch (a netlink socket keeps order; the kernel
// handles the batch within the send).
func (s *sender) sendBatch(req []netlink.Message) error {
	c, err := netlink.Dial(syscall.NETLINK_NETFILTER, &netlink.Config{NetNS: s.n.netns})
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer c.Close()
	if err := s.n.bigBuffers(c); err != nil {
		return err
	}
	if err := sendRaw(c, marshalBatch(req)); err != nil {
		return fmt.Errorf("sending batch: %w", err)
	}
	gen, err := c.Send(netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(nfnlSubsysNftables<<8 | nftMsgGetGen), Flags: netlink.Request | netlink.Acknowledge},
		Data:   []byte{syscall.AF_UNSPEC, 0, 0, 0},
	})
	if err != nil {
		return fmt.Errorf("sending GETGEN: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	if d, ok := s.ctx.Deadline(); ok {
		deadline = d
	}
	if err := c.SetReadDeadline(deadline); err != nil {
		return err
	}
	var batchErr error
	for {
		replies, err := c.Receive()
		if err != nil {
			var oe *netlink.OpError
			if errors.As(err, &oe) && batchErr == nil {
				batchErr = err // a message of the batch failed: all of it is void
				continue
			}
			if batchErr != nil {
				return batchErr
			}
			return fmt.Errorf("reading the answer: %w", err)
		}
		for _, r := range replies {
			if r.Header.Type == netlink.Error && r.Header.Sequence == gen.Header.Sequence {
				return batchErr
			}
		}
	}
}

// marshalBatch encodes a batch into one buffer, without the
// acknowledgement and echo flags: the library asks the kernel to echo
// every rule back (to learn its handle, which we do not use), which for
// a large transaction is megabytes of answers read one by one.
// (netlink.Conn.SendMessages would marshal each message apart and grow
// its buffer by appending: for a batch of megabytes, slower than the
// kernel's work on it.) The kernel does not look at our sequence numbers
// in a batch but to quote them in error answers.
func marshalBatch(msgs []netlink.Message) []byte {
	n := 0
	for _, m := range msgs {
		n += nlmsgAlign(nlmsgHeaderLen + len(m.Data))
	}
	buf := make([]byte, 0, n)
	for i, m := range msgs {
		l := nlmsgHeaderLen + len(m.Data)
		buf = binary.NativeEndian.AppendUint32(buf, uint32(l))
		buf = binary.NativeEndian.AppendUint16(buf, uint16(m.Header.Type))
		buf = binary.NativeEndian.AppendUint16(buf, uint16(m.Header.Flags&^(netlink.Acknowledge|netlink.Echo)))
		buf = binary.NativeEndian.AppendUint32(buf, uint32(i+1)) // sequence
		buf = binary.NativeEndian.AppendUint32(buf, 0)           // port ID: the kernel fills it in
		buf = append(buf, m.Data...)
		buf = append(buf, make([]byte, nlmsgAlign(l)-l)...)
	}
	return buf
}

const nlmsgHeaderLen = 16 // sizeof(struct nlmsghdr)

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }

// sendRaw sends buf, one or more netlink messages, in one sendto.
func sendRaw(c *netlink.Conn, buf []byte) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), buf, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
		return serr != syscall.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

func addElements(conn *nftables.Conn, s *nftables.Set, es []Element) error {
	for len(es) > 0 {
		var c []Element
		c, es = chunk(es)
		if err := conn.SetAddElements(s, nftElements(c)); err != nil {
			return err
		}
	}
	return nil
}

func chunk(es []Element) (first, rest []Element) {
	if len(es) <= elementChunk {
		return es, nil
	}
	return es[:elementChunk], es[elementChunk:]
}

var (
	typeAddrPort4 = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeAddrPort6 = nftables.MustConcatSetType(nftables.TypeIP6Addr, nftables.TypeInetProto, nftables.TypeInetService)
)

func nftSet(tbl *nftables.Table, s *Set) *nftables.Set {
	out := &nftables.Set{Table: tbl, Name: s.Name}
	switch s.Type {
	case SetIPv4:
		out.KeyType = nftables.TypeIPAddr
	case SetIPv6:
		out.KeyType = nftables.TypeIP6Addr
	case SetIPv4Port:
		out.KeyType, out.Concatenation = typeAddrPort4, true
	case SetIPv6Port:
		out.KeyType, out.Concatenation = typeAddrPort6, true
	case MapIfname:
		out.KeyType, out.DataType, out.IsMap = nftables.TypeIFName, nftables.TypeVerdict, true
	}
	return out
}

func nftElements(es []Element) []nftables.SetElement {
	out := make([]nftables.SetElement, len(es))
	for i, e := range es {
		out[i] = nftables.SetElement{Key: e.Key}
		if e.Jump != "" {
			out[i].VerdictData = &expr.Verdict{Kind: expr.VerdictJump, Chain: e.Jump}
		}
	}
	return out
}

// bigBuffers raises the socket buffers past the system maximum, which
// CAP_NET_ADMIN allows (SO_SNDBUFFORCE, SO_RCVBUFFORCE): a large
// transaction is one send, and the kernel queues an acknowledgement for
// each of its messages before we read them.
func (n *Netlink) bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUFFORCE, n.buf); serr != nil {
			return
		}
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n.buf)
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("netlink socket buffers: %w", serr)
	}
	return nil
}
