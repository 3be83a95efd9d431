//go:debug multipathtcp=0

package speakerproc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"

	"github.com/bgpfabric/bgpfabric/router"
	"github.com/bgpfabric/bgpfabric/router/gobgp"
	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// newGoBGP is the child's speaker in this test binary, as in
// cmd/bgpfabric-speaker.
func newGoBGP(lg *slog.Logger) speaker.Speaker {
	return gobgp.New(gobgp.Config{Logger: lg.With("component", "gobgp")})
}

func TestMain(m *testing.M) {
	if os.Getenv(envTestHang) != "" {
		wrapChildSpeaker = func(sp router.Speaker) router.Speaker { return hangingPeers{sp} }
	}
	if v := os.Getenv(envTestProtocol); v != "" {
		ProtocolID = func() string { return v }
	}
	MaybeChild(newGoBGP) // this binary is also the speaker child of its tests
	if os.Getenv(envTestParent) != "" {
		os.Exit(runTestParent())
	}
	code := m.Run()
	if fuzzH != nil {
		fuzzH.close()
	}
	os.Exit(code)
}

// crasherBody is issue 11's UPDATE after its header: an MP_REACH_NLRI of
// 3 bytes (AFI 1, SAFI 1, nothing else) on which GoBGP v3.37.0's decoder
// panics in its receive goroutine.
var crasherBody = []byte{0x00, 0x00, 0x00, 0x0d, 0x40, 0x01, 0x01, 0x00, 0x40, 0x02, 0x00, 0x80, 0x0e, 0x03, 0x00, 0x01, 0x01}

var (
	speakerAddr = netip.MustParseAddr("127.0.0.1")
	peerAddr    = netip.MustParseAddr("127.0.0.2")
)

// harness is a Client with a child speaker on loopback that has one
// passive peer, 127.0.0.2 (AS 65050), to which it advertises one route,
// and the losses it reported.
type harness struct {
	c      *Client
	port   int
	cancel context.CancelFunc
	losses chan router.SpeakerLoss
	logs   *lockedLog
}

type lockedLog struct {
	ch chan string
}

func (l *lockedLog) Write(p []byte) (int, error) {
	select {
	case l.ch <- string(p):
	default:
	}
	return len(p), nil
}

func newHarness() (*harness, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logs := &lockedLog{ch: make(chan string, 256)}
	h := &harness{port: port, losses: make(chan router.SpeakerLoss, 16), logs: logs}
	h.c = New(Config{Command: SelfCommand("-test.run=^$"), Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	if err := h.c.WatchLoss(ctx, func(l router.SpeakerLoss) { h.losses <- l }); err != nil {
		return nil, err
	}
	if err := h.start(); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// start starts a child and configures it.
func (h *harness) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.c.Start(ctx, router.Global{AS: 64512, RouterID: speakerAddr, ListenPort: int32(h.port),
		ListenAddresses: []netip.Addr{speakerAddr}, ExportPolicy: router.ExportAll}); err != nil {
		return err
	}
	if err := h.addPeer(ctx); err != nil {
		return err
	}
	return h.c.Announce(ctx, []router.LocalRoute{{Prefix: netip.MustParsePrefix("10.66.0.0/24"), NextHop: speakerAddr}})
}

func (h *harness) addPeer(ctx context.Context) error {
	return h.c.AddPeer(ctx, router.PeerConfig{Address: peerAddr, PeerAS: 65050, LocalAS: 64512, Passive: true,
		HoldTime: 90 * time.Second, KeepaliveTime: 30 * time.Second, IPv4: true})
}

// resetPeer deletes and adds the peer again, so that its next session
// needs no idle hold time after a reset.
func (h *harness) resetPeer() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.c.DeletePeer(ctx, peerAddr); err != nil {
		return err
	}
	return h.addPeer(ctx)
}

func (h *harness) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = h.c.Stop(ctx)
	h.cancel()
}

// session is a raw BGP session from 127.0.0.2 to the speaker.
type session struct {
	conn net.Conn
	msgs chan *bgp.BGPMessage // closed with the connection
}

// dial connects and establishes a session, retrying while the speaker
// refuses (its peer not yet listening after a restart).
func (h *harness) dial(timeout time.Duration) (*session, error) {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IP(peerAddr.AsSlice())}, Timeout: 2 * time.Second}
	var lastErr error
	for time.Now().Before(deadline) {
		c, err := d.Dial("tcp4", net.JoinHostPort(speakerAddr.String(), strconv.Itoa(h.port)))
		if err != nil {
			lastErr = err
			time.Sleep(20 * time.Millisecond) // a listener has no event to wait on
			continue
		}
		s := &session{conn: c, msgs: make(chan *bgp.BGPMessage, 64)}
		go s.read()
		if err := s.establish(); err != nil {
			c.Close()
			lastErr = err
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return s, nil
	}
	return nil, fmt.Errorf("no session with the speaker: %w", lastErr)
}

func (s *session) read() {
	defer close(s.msgs)
	hdr := make([]byte, bgp.BGP_HEADER_LENGTH)
	for {
		if _, err := io.ReadFull(s.conn, hdr); err != nil {
			return
		}
		l := int(binary.BigEndian.Uint16(hdr[16:]))
		if l < bgp.BGP_HEADER_LENGTH {
			return
		}
		b := make([]byte, l)
		copy(b, hdr)
		if _, err := io.ReadFull(s.conn, b[bgp.BGP_HEADER_LENGTH:]); err != nil {
			return
		}
		m, err := bgp.ParseBGPMessage(b)
		if err != nil {
			return
		}
		s.msgs <- m
	}
}

func (s *session) send(m *bgp.BGPMessage) error {
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	_, err = s.conn.Write(b)
	return err
}

// expect waits for a message of type typ; errNotified when the speaker
// sent a NOTIFICATION (it ends the session), errClosed when the session
// ended without one first.
var (
	errClosed   = errors.New("session closed")
	errNotified = errors.New("NOTIFICATION received")
)

func (s *session) expect(typ uint8, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				return errClosed
			}
			if m.Header.Type == typ {
				return nil
			}
			if m.Header.Type == bgp.BGP_MSG_NOTIFICATION {
				return errNotified
			}
		case <-t.C:
			return fmt.Errorf("no message of type %d in %v", typ, timeout)
		}
	}
}

func (s *session) establish() error {
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapRouteRefresh(), bgp.NewCapFourOctetASNumber(65050)}
	if err := s.send(bgp.NewBGPOpenMessage(bgp.AS_TRANS, 90, peerAddr.String(), []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})); err != nil {
		return err
	}
	if err := s.expect(bgp.BGP_MSG_OPEN, 10*time.Second); err != nil {
		return err
	}
	if err := s.send(bgp.NewBGPKeepAliveMessage()); err != nil {
		return err
	}
	if err := s.expect(bgp.BGP_MSG_KEEPALIVE, 10*time.Second); err != nil {
		return err
	}
	// The speaker advertises its route once the session is up.
	return s.expect(bgp.BGP_MSG_UPDATE, 10*time.Second)
}

// sendUpdate sends an UPDATE with body as it is (the header's length is
// the body's).
func (s *session) sendUpdate(body []byte) error {
	b := make([]byte, 16, bgp.BGP_HEADER_LENGTH+len(body))
	for i := range b {
		b[i] = 0xff
	}
	b = binary.BigEndian.AppendUint16(b, uint16(bgp.BGP_HEADER_LENGTH+len(body)))
	b = append(b, bgp.BGP_MSG_UPDATE)
	_, err := s.conn.Write(append(b, body...))
	return err
}

// outcome of one UPDATE sent to the speaker.
type outcome int

const (
	handled outcome = iota // the session carries on
	reset                  // the speaker ended the session (NOTIFICATION)
	crashed                // the speaker process died
)

// try sends one UPDATE body on a fresh or running session and reports
// what became of the speaker, then makes sure it serves the peer again:
// after a crash a new child runs and the session re-establishes. It
// returns an error when the property breaks: no loss reported for a dead
// speaker, no restart, or no session afterwards.
func (h *harness) try(s *session, body []byte) (outcome, *session, error) {
	if err := s.sendUpdate(body); err != nil {
		return 0, nil, fmt.Errorf("sending: %w", err)
	}
	// A route refresh after it: the speaker answers with its route once
	// it has read, in order, the UPDATE before.
	if err := s.send(bgp.NewBGPRouteRefreshMessage(bgp.AFI_IP, 0, bgp.SAFI_UNICAST)); err != nil && !errors.Is(err, net.ErrClosed) {
		// the connection may be gone already; the expect below says why
	}
	err := s.expect(bgp.BGP_MSG_UPDATE, 10*time.Second)
	if err == nil {
		return handled, s, nil
	}
	s.conn.Close()
	if !errors.Is(err, errClosed) && !errors.Is(err, errNotified) {
		return 0, nil, err
	}
	// A NOTIFICATION is a reset; a close without one a crash, whose loss
	// comes within moments of the connection's end (or a reset without
	// a NOTIFICATION, when none comes).
	wait := 10 * time.Second
	if errors.Is(err, errNotified) {
		wait = 0
	}
	var out outcome
	select {
	case loss := <-h.losses:
		out = crashed
		if loss.Panic == "" {
			return crashed, nil, fmt.Errorf("loss without the panic: %v", loss.Err)
		}
		if err := h.start(); err != nil {
			return crashed, nil, fmt.Errorf("restarting the speaker: %w", err)
		}
	case <-time.After(wait):
		out = reset
		if err := h.resetPeer(); err != nil {
			return reset, nil, fmt.Errorf("re-adding the peer: %w", err)
		}
	}
	ns, err := h.dial(30 * time.Second)
	if err != nil {
		return out, nil, fmt.Errorf("after the %v: %w", out, err)
	}
	return out, ns, nil
}

func (o outcome) String() string {
	return [...]string{"handled", "session reset", "crash"}[o]
}
