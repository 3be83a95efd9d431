package speakerproc

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/internal/memtrim"
	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// Environment of the child: EnvChild marks a process started as the
// speaker child (test binaries look for it in TestMain, see MaybeChild),
// EnvParent holds the parent's PID, so that a child whose parent died
// before the death signal was armed exits at once.
const (
	EnvChild  = "BGPFABRIC_SPEAKER_CHILD"
	EnvParent = "BGPFABRIC_SPEAKER_PARENT"
	// childFD is the child's end of the socketpair (ExtraFiles[0]).
	childFD = 3
)

// NewSpeaker makes the child's speaker, logging to lg: router/gobgp's
// (gobgp.New) in every binary that runs as a child. This package does not
// import router/gobgp itself, so that the node's process, which links only
// the parent's side, does not carry GoBGP (docs/scale.md, "Memory at
// rest").
type NewSpeaker func(lg *slog.Logger) speaker.Speaker

// RunChild is the child's main: it serves the parent on file descriptor
// 3 with the Speaker newSpeaker makes until the parent goes away, logging
// as JSON lines on stderr (which the parent reads). It returns when the
// parent closed the channel or died; it never returns while the parent
// lives unless the channel broke.
func RunChild(newSpeaker NewSpeaker) error {
	// Die with the parent. The parent set Pdeathsig already; arming it
	// again here costs nothing, and the check after it closes the race
	// where the parent died before the child existed.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
		return fmt.Errorf("speaker child: arming the parent-death signal: %w", err)
	}
	if want, err := strconv.Atoi(os.Getenv(EnvParent)); err == nil && os.Getppid() != want {
		return errors.New("speaker child: the parent is gone")
	}
	lg := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: childLevel()}))
	f := os.NewFile(childFD, "speaker-channel")
	if f == nil {
		return errors.New("speaker child: no channel on file descriptor 3")
	}
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("speaker child: channel: %w", err)
	}
	defer conn.Close()
	// Give back what only the start needed once the node's sessions
	// are up, then again each time the paths have been quiet after a
	// burst (internal/memtrim; the paths streamed to the parent mark the
	// changes, watchPaths). The goroutine ends with Serve.
	tctx, tcancel := context.WithCancel(context.Background())
	defer tcancel()
	go trimChild(tctx, lg)
	sp := newSpeaker(lg)
	if wrapChildSpeaker != nil {
		sp = wrapChildSpeaker(sp)
	}
	return Serve(context.Background(), conn, sp, lg)
}

// childTrimSettle is how long after its start the child gives back the
// memory that only its start needed (internal/memtrim). The node starts
// the child when it starts its router, so this is the node's own
// settling time after it is ready (cmd/bgpfabric trimSettle).
const childTrimSettle = time.Minute

// childQuietSettle and childQuietGap are the child's quiet trim: as the
// node's (cmd/bgpfabric), 30 s without a path after a burst, at most
// once per 10 minutes.
const (
	childQuietSettle = 30 * time.Second
	childQuietGap    = 10 * time.Minute
)

// trimChild trims the child's memory childTrimSettle after its start, then
// each time its paths have been quiet after a burst, until ctx ends. As
// the node's, the start-up trim does not count against the gap: the first
// quiet trim follows the convergence that goes on after it.
func trimChild(ctx context.Context, lg *slog.Logger) {
	t := time.NewTimer(childTrimSettle)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	if res, err := memtrim.Trim(); err != nil {
		lg.Warn("giving back start-up memory", logKeyError, err)
	} else {
		lg.Info("gave back start-up memory", memtrim.LogKeyBinaryKiB, res.BinaryKiB)
	}
	memtrim.WhenQuiet(ctx, memtrim.QuietConfig{Settle: childQuietSettle, MinGap: childQuietGap, Trim: func() {
		if res, err := memtrim.Trim(); err != nil {
			lg.Warn("giving back memory after a burst of paths", logKeyError, err)
		} else {
			lg.Info("gave back memory after a burst of paths", memtrim.LogKeyBinaryKiB, res.BinaryKiB)
		}
	}})
}

// wrapChildSpeaker, set by tests before MaybeChild, wraps the child's
// speaker (to make it misbehave).
var wrapChildSpeaker func(speaker.Speaker) speaker.Speaker

// EnvLevel passes the parent's log level to the child ("debug" or empty).
const EnvLevel = "BGPFABRIC_SPEAKER_LOG_LEVEL"

func childLevel() slog.Level {
	if os.Getenv(EnvLevel) == "debug" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// MaybeChild runs the child with newSpeaker's speaker and exits when the
// process was started as a speaker child, or prints ProtocolID and exits
// when it was asked for it (EnvQuery); otherwise it returns. Test binaries
// call it first in TestMain so that a Client can run them as the child
// (Config.Command).
func MaybeChild(newSpeaker NewSpeaker) {
	if os.Getenv(EnvQuery) != "" {
		fmt.Println(ProtocolID())
		os.Exit(0)
	}
	if os.Getenv(EnvChild) == "" {
		return
	}
	if err := RunChild(newSpeaker); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Serve serves the parent's requests on rw with sp until rw ends (the
// parent closed it or died). It does not stop sp on the way out: when
// the parent dies, the process ends and the kernel closes the sessions'
// connections without a Cease, so that peers with graceful restart keep
// our routes. Exported for tests that serve an in-process speaker.
func Serve(ctx context.Context, rw io.ReadWriter, sp speaker.Speaker, lg *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &writer{bw: bufio.NewWriterSize(rw, writeBuffer)}
	w.enc = gob.NewEncoder(w.bw)
	dec := gob.NewDecoder(bufio.NewReaderSize(rw, requestReadBuffer))
	watching := false
	for {
		var req request
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("speaker child: reading a request: %w", err)
		}
		reply := message{ID: req.ID}
		var err error
		switch req.Op {
		case opStart:
			if req.Global == nil {
				err = errors.New("start without global settings")
				break
			}
			if err = sp.Start(ctx, *req.Global); err == nil && !watching {
				watching = true
				err = errors.Join(
					sp.WatchPeers(ctx, func(e speaker.PeerEvent) { w.send(message{Peer: &e}) }),
					watchPaths(ctx, sp, req.Global.ReceivedPaths, w))
			}
		case opStop:
			err = sp.Stop(ctx)
		case opAddPeer:
			err = withPeer(req, func(p speaker.PeerConfig) error { return sp.AddPeer(ctx, p) })
		case opUpdatePeer:
			err = withPeer(req, func(p speaker.PeerConfig) error { return sp.UpdatePeer(ctx, p, req.Reset) })
		case opDeletePeer:
			err = sp.DeletePeer(ctx, req.Addr)
		case opAddPeerRange:
			err = withRange(req, func(r speaker.PeerRangeConfig) error { return sp.AddPeerRange(ctx, r) })
		case opUpdatePeerRange:
			err = withRange(req, func(r speaker.PeerRangeConfig) error { return sp.UpdatePeerRange(ctx, r) })
		case opDeletePeerRange:
			err = sp.DeletePeerRange(ctx, req.Prefix)
		case opSoftReset:
			err = sp.SoftReset(ctx, req.Addr, req.In)
		case opResetPeer:
			err = sp.ResetPeer(ctx, req.Addr)
		case opAnnounce:
			err = sp.Announce(ctx, req.Routes)
		case opWithdraw:
			err = sp.Withdraw(ctx, req.Prefixes)
		case opPeers:
			reply.Peers, err = sp.Peers(ctx)
		case opRIB:
			reply.RIB, err = sp.RIB(ctx)
		default:
			err = fmt.Errorf("unknown operation %d", req.Op)
		}
		if err != nil {
			reply.Err = err.Error()
		}
		if err := w.send(reply); err != nil {
			lg.Debug("speaker child: writing to the parent", "error", err)
			return nil
		}
	}
}

func withPeer(req request, fn func(speaker.PeerConfig) error) error {
	if req.Peer == nil {
		return errors.New("request without a peer")
	}
	return fn(*req.Peer)
}

func withRange(req request, fn func(speaker.PeerRangeConfig) error) error {
	if req.Range == nil {
		return errors.New("request without a range")
	}
	return fn(*req.Range)
}

// writer serialises the child's messages: replies from the request loop
// and events from the speaker's watch goroutines.
type writer struct {
	mu  sync.Mutex
	bw  *bufio.Writer
	enc *gob.Encoder
	err error
}

func (w *writer) send(m message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if err := w.enc.Encode(&m); err != nil {
		w.err = err
		return err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = err
	}
	return w.err
}

// watchPaths subscribes to the speaker's paths: every received path when
// the parent selects the best paths itself (Global.ReceivedPaths) and the
// speaker can report them, best-path changes otherwise; one stream, so
// that the speaker does not produce both.
func watchPaths(ctx context.Context, sp speaker.Speaker, received bool, w *writer) error {
	if pw, ok := sp.(speaker.PathWatcher); ok && received {
		return pw.WatchReceived(ctx, func(rs []speaker.Received) {
			memtrim.Changed()
			w.send(message{Recv: rs})
		})
	}
	return sp.WatchBestPaths(ctx, func(ds []speaker.Destination) {
		memtrim.Changed()
		w.send(message{Best: ds})
	})
}
