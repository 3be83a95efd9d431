// Package speakerproc runs the node's BGP speaker (router/gobgp on GoBGP)
// in a child process, supervised by the node, as Calico keeps BIRD apart
// from Felix: GoBGP's decoder can panic on a peer's message in a
// goroutine of its own, where nothing in the process can recover it, and
// such a panic must cost the speaker, not felix and the kernel routes.
//
// Client is the parent's side: a speaker.Speaker whose every method is a
// request to the child over a private socketpair (gob, see proto.go).
// When the child dies without Stop, Client fails the calls in flight,
// reports the loss through WatchLoss (speaker.LossWatcher) after every
// event the child sent before it died, and the next Start runs a new
// child. Restarting, replaying the sessions and routes, graceful restart
// and quarantining a peer that keeps crashing it are the router's job
// (router/supervise.go); see docs/robustness.md.
//
// The child (RunChild, `bgpfabric node speaker`) runs in the parent's
// network namespace, dies with it (PR_SET_PDEATHSIG, armed by the parent
// at fork and checked by the child) and exits when the channel closes.
// Its stderr, JSON log lines and a panic's trace, goes to the parent's
// logger, rate-limited (logfwd.go).
package speakerproc

import (
	"bufio"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// ErrLost is returned by calls in flight when the child dies, and by
// calls made while no child runs.
var ErrLost = errors.New("speaker process lost")

// Config configures a Client.
type Config struct {
	// Command returns the child's command: a binary that calls RunChild
	// (`bgpfabric node speaker`, or a test binary that calls MaybeChild).
	// The Client sets its environment, extra files, stderr and process
	// attributes. Required.
	Command func() *exec.Cmd
	// Logger receives the Client's and the child's logs; nil discards.
	Logger *slog.Logger
	// StopTimeout bounds how long Stop waits for the child to exit
	// before it kills it; zero means 10 s.
	StopTimeout time.Duration
	// CallTimeout bounds how long a call waits for the child's reply;
	// a child that does not answer within it is hung and is killed (a
	// loss, like a crash). Zero means 2 minutes, far above the longest
	// call seen (announcing or listing 100,000 routes takes seconds).
	CallTimeout time.Duration
	// MaxQueuedErrors bounds the peer error events queued for the
	// watchers; beyond it, errors are dropped and counted (state events
	// are never dropped). Zero means 4096.
	MaxQueuedErrors int
}

// Client is a speaker.Speaker in a child process.
type Client struct {
	cfg Config
	lg  *slog.Logger

	mu      sync.Mutex // guards cur and the watcher lists
	cur     *child
	peerFns []watcher[speaker.PeerEvent]
	bestFns []watcher[[]speaker.Destination]
	recvFns []watcher[[]speaker.Received]
	lossFns []watcher[speaker.SpeakerLoss]
}

type watcher[T any] struct {
	ctx context.Context
	fn  func(T)
}

var (
	_ speaker.Speaker     = (*Client)(nil)
	_ speaker.LossWatcher = (*Client)(nil)
)

// New returns a Client with no child; Start runs one.
func New(cfg Config) *Client {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.MaxQueuedErrors == 0 {
		cfg.MaxQueuedErrors = 4096
	}
	if cfg.CallTimeout == 0 {
		cfg.CallTimeout = 2 * time.Minute
	}
	return &Client{cfg: cfg, lg: cfg.Logger}
}

// SelfCommand returns a Config.Command that runs this executable with
// args (for the node: "node", "speaker"). It executes /proc/self/exe, the
// binary this process runs, so that a binary replaced or removed on disk
// since the node started (an upgrade in progress) still starts the same
// speaker.
func SelfCommand(args ...string) func() *exec.Cmd {
	return func() *exec.Cmd {
		return exec.Command("/proc/self/exe", args...)
	}
}

// Start runs a new child and starts its speaker. It fails if a child
// runs (Stop it first); after a loss it runs a new one.
func (c *Client) Start(ctx context.Context, g speaker.Global) error {
	c.mu.Lock()
	if c.cur != nil && !c.cur.isDead() {
		c.mu.Unlock()
		return errors.New("speaker process: already running")
	}
	c.mu.Unlock()
	ch, err := c.spawn()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cur = ch
	c.mu.Unlock()
	if _, err := ch.call(ctx, request{Op: opStart, Global: &g}); err != nil {
		ch.stop(c.cfg.StopTimeout)
		c.mu.Lock()
		if c.cur == ch {
			c.cur = nil
		}
		c.mu.Unlock()
		return fmt.Errorf("speaker process: start: %w", err)
	}
	return nil
}

// Stop stops the child's speaker (peers get a Cease) and ends the child.
func (c *Client) Stop(ctx context.Context) error {
	c.mu.Lock()
	ch := c.cur
	c.cur = nil
	c.mu.Unlock()
	if ch == nil {
		return nil
	}
	ch.stopping.Store(true)
	var err error
	if !ch.isDead() {
		_, err = ch.call(ctx, request{Op: opStop})
	}
	ch.stop(c.cfg.StopTimeout)
	if errors.Is(err, ErrLost) {
		err = nil // it is gone, which is what Stop wanted
	}
	return err
}

// PID is the running child's process ID, 0 when none runs.
func (c *Client) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.isDead() {
		return 0
	}
	return c.cur.cmd.Process.Pid
}

// do sends req to the current child.
func (c *Client) do(ctx context.Context, req request) (message, error) {
	c.mu.Lock()
	ch := c.cur
	c.mu.Unlock()
	if ch == nil {
		return message{}, ErrLost
	}
	return ch.call(ctx, req)
}

func (c *Client) simple(ctx context.Context, req request) error {
	_, err := c.do(ctx, req)
	return err
}

// AddPeer implements speaker.Speaker.
func (c *Client) AddPeer(ctx context.Context, p speaker.PeerConfig) error {
	return c.simple(ctx, request{Op: opAddPeer, Peer: &p})
}

// UpdatePeer implements speaker.Speaker.
func (c *Client) UpdatePeer(ctx context.Context, p speaker.PeerConfig, reset bool) error {
	return c.simple(ctx, request{Op: opUpdatePeer, Peer: &p, Reset: reset})
}

// DeletePeer implements speaker.Speaker.
func (c *Client) DeletePeer(ctx context.Context, addr netip.Addr) error {
	return c.simple(ctx, request{Op: opDeletePeer, Addr: addr})
}

// AddPeerRange implements speaker.Speaker.
func (c *Client) AddPeerRange(ctx context.Context, r speaker.PeerRangeConfig) error {
	return c.simple(ctx, request{Op: opAddPeerRange, Range: &r})
}

// UpdatePeerRange implements speaker.Speaker.
func (c *Client) UpdatePeerRange(ctx context.Context, r speaker.PeerRangeConfig) error {
	return c.simple(ctx, request{Op: opUpdatePeerRange, Range: &r})
}

// DeletePeerRange implements speaker.Speaker.
func (c *Client) DeletePeerRange(ctx context.Context, p netip.Prefix) error {
	return c.simple(ctx, request{Op: opDeletePeerRange, Prefix: p})
}

// SoftReset implements speaker.Speaker.
func (c *Client) SoftReset(ctx context.Context, addr netip.Addr, in bool) error {
	return c.simple(ctx, request{Op: opSoftReset, Addr: addr, In: in})
}

// ResetPeer implements speaker.Speaker.
func (c *Client) ResetPeer(ctx context.Context, addr netip.Addr) error {
	return c.simple(ctx, request{Op: opResetPeer, Addr: addr})
}

// Announce implements speaker.Speaker.
func (c *Client) Announce(ctx context.Context, routes []speaker.LocalRoute) error {
	return c.simple(ctx, request{Op: opAnnounce, Routes: routes})
}

// Withdraw implements speaker.Speaker.
func (c *Client) Withdraw(ctx context.Context, prefixes []netip.Prefix) error {
	return c.simple(ctx, request{Op: opWithdraw, Prefixes: prefixes})
}

// Peers implements speaker.Speaker.
func (c *Client) Peers(ctx context.Context) ([]speaker.PeerStatus, error) {
	m, err := c.do(ctx, request{Op: opPeers})
	return m.Peers, err
}

// RIB implements speaker.Speaker.
func (c *Client) RIB(ctx context.Context) ([]speaker.Destination, error) {
	m, err := c.do(ctx, request{Op: opRIB})
	return m.RIB, err
}

// WatchBestPaths implements speaker.Speaker. The watch spans children:
// every child's changes reach fn, starting with what the child has when
// fn is added (nothing, when it is added after Start and before the
// first AddPeer, as the router does).
func (c *Client) WatchBestPaths(ctx context.Context, fn func([]speaker.Destination)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bestFns = append(c.bestFns, watcher[[]speaker.Destination]{ctx, fn})
	return nil
}

// WatchReceived implements speaker.PathWatcher; the watch spans children.
// A child reports received paths only when started with
// Global.ReceivedPaths (and best-path changes only without it).
func (c *Client) WatchReceived(ctx context.Context, fn func([]speaker.Received)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recvFns = append(c.recvFns, watcher[[]speaker.Received]{ctx, fn})
	return nil
}

// WatchPeers implements speaker.Speaker; the watch spans children.
func (c *Client) WatchPeers(ctx context.Context, fn func(speaker.PeerEvent)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peerFns = append(c.peerFns, watcher[speaker.PeerEvent]{ctx, fn})
	return nil
}

// WatchLoss implements speaker.LossWatcher: fn gets every death of a
// child that Stop did not ask for, after the events the child sent.
func (c *Client) WatchLoss(ctx context.Context, fn func(speaker.SpeakerLoss)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lossFns = append(c.lossFns, watcher[speaker.SpeakerLoss]{ctx, fn})
	return nil
}

// child is one speaker process.
type child struct {
	c    *Client
	cmd  *exec.Cmd
	conn net.Conn

	encMu sync.Mutex
	enc   *gob.Encoder
	bw    *bufio.Writer

	pmu     sync.Mutex
	nextID  uint64
	pending map[uint64]chan message
	dead    bool

	stopping atomic.Bool
	lost     chan struct{} // closed when the channel broke
	exited   chan struct{} // closed when the process was reaped
	waitErr  error
	hung     atomic.Pointer[string] // why the child was killed as hung
	logs     *logForwarder
	events   *eventQueue
}

func (ch *child) isDead() bool {
	select {
	case <-ch.lost:
		return true
	default:
		return false
	}
}

// spawn starts a child process with its end of a socketpair as fd 3.
func (c *Client) spawn() (*child, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("speaker process: socketpair: %w", err)
	}
	parentF := os.NewFile(uintptr(fds[0]), "speaker-parent")
	childF := os.NewFile(uintptr(fds[1]), "speaker-child")
	defer childF.Close()
	conn, err := net.FileConn(parentF)
	parentF.Close()
	if err != nil {
		return nil, fmt.Errorf("speaker process: channel: %w", err)
	}
	cmd := c.cfg.Command()
	cmd.ExtraFiles = []*os.File{childF}
	level := ""
	if c.lg.Enabled(context.Background(), slog.LevelDebug) {
		level = "debug"
	}
	cmd.Env = append(os.Environ(), EnvChild+"=1", EnvParent+"="+strconv.Itoa(os.Getpid()), EnvLevel+"="+level)
	// The kernel sends Pdeathsig when the thread that forked the child
	// exits, not only the process: fork from a thread that is locked
	// for the child's whole life (the reaper below).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("speaker process: %w", err)
	}
	ch := &child{
		c: c, cmd: cmd, conn: conn,
		pending: map[uint64]chan message{},
		lost:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	ch.bw = bufio.NewWriterSize(conn, writeBuffer)
	ch.enc = gob.NewEncoder(ch.bw)
	ch.logs = newLogForwarder(c.lg, stderr)
	ch.events = newEventQueue(c, c.cfg.MaxQueuedErrors)
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		go ch.logs.run()
		<-ch.logs.done // read stderr to its end before Wait closes it
		ch.waitErr = cmd.Wait()
		close(ch.exited)
	}()
	if err := <-started; err != nil {
		conn.Close()
		return nil, fmt.Errorf("speaker process: starting %s: %w", cmd.Path, err)
	}
	c.lg.Info("speaker process started", logKeyPID, cmd.Process.Pid)
	go ch.events.run()
	go ch.read()
	return ch, nil
}

// read takes the child's messages until the channel breaks, then fails
// the calls in flight and, unless Stop asked for it, reports the loss
// once the process is reaped.
func (ch *child) read() {
	dec := gob.NewDecoder(bufio.NewReaderSize(ch.conn, readBuffer))
	var rerr error
	for {
		var m message
		if rerr = dec.Decode(&m); rerr != nil {
			break
		}
		if m.ID != 0 {
			ch.pmu.Lock()
			p := ch.pending[m.ID]
			delete(ch.pending, m.ID)
			ch.pmu.Unlock()
			if p != nil {
				p <- m
			}
			continue
		}
		ch.events.push(m)
	}
	ch.pmu.Lock()
	ch.dead = true
	for id, p := range ch.pending {
		close(p)
		delete(ch.pending, id)
	}
	ch.pmu.Unlock()
	close(ch.lost)
	ch.conn.Close()
	// The channel breaks when the process dies; wait for it, so that
	// the loss names the exit and the panic. A child that broke the
	// channel and lives on is killed: it is of no use any more.
	select {
	case <-ch.exited:
	case <-time.After(2 * time.Second):
		_ = ch.cmd.Process.Kill()
		<-ch.exited
	}
	if ch.stopping.Load() {
		ch.events.close(nil)
		return
	}
	reason := exitReason(ch.waitErr, rerr)
	if h := ch.hung.Load(); h != nil {
		reason = *h + ", killed"
	}
	loss := speaker.SpeakerLoss{At: time.Now(), Err: fmt.Errorf("%w: %v", ErrLost, reason), Panic: ch.logs.panicText()}
	loss.LastUp, loss.LastUpAt = ch.logs.lastPeerUp()
	ch.c.lg.Error("speaker process died", logKeyError, loss.Err, logKeyPanic, loss.Panic, logKeyLastUp, loss.LastUp)
	ch.events.close(&loss)
}

func exitReason(waitErr, readErr error) string {
	if waitErr != nil {
		return waitErr.Error()
	}
	return fmt.Sprintf("exited (channel: %v)", readErr)
}

// call sends req and waits for its reply.
func (ch *child) call(ctx context.Context, req request) (message, error) {
	reply := make(chan message, 1)
	ch.pmu.Lock()
	if ch.dead {
		ch.pmu.Unlock()
		return message{}, ErrLost
	}
	ch.nextID++
	req.ID = ch.nextID
	ch.pending[req.ID] = reply
	ch.pmu.Unlock()
	ch.encMu.Lock()
	err := ch.enc.Encode(&req)
	if err == nil {
		err = ch.bw.Flush()
	}
	ch.encMu.Unlock()
	if err != nil {
		ch.forget(req.ID)
		return message{}, fmt.Errorf("%w: sending %s: %v", ErrLost, req.Op, err)
	}
	timeout := time.NewTimer(ch.c.cfg.CallTimeout)
	defer timeout.Stop()
	select {
	case <-timeout.C:
		ch.forget(req.ID)
		why := fmt.Sprintf("no reply to %s within %v", req.Op, ch.c.cfg.CallTimeout)
		if ch.hung.CompareAndSwap(nil, &why) {
			ch.c.lg.Error("speaker process hung; killing it", logKeyError, why)
			_ = ch.cmd.Process.Kill()
		}
		return message{}, fmt.Errorf("%w: %s", ErrLost, why)
	case m, ok := <-reply:
		if !ok {
			return message{}, ErrLost
		}
		if m.Err != "" {
			return m, errors.New(m.Err)
		}
		return m, nil
	case <-ctx.Done():
		ch.forget(req.ID)
		return message{}, ctx.Err()
	}
}

func (ch *child) forget(id uint64) {
	ch.pmu.Lock()
	delete(ch.pending, id)
	ch.pmu.Unlock()
}

// stop closes the channel (the child exits on its end), waits up to d
// for the process and kills it after that.
func (ch *child) stop(d time.Duration) {
	ch.stopping.Store(true)
	ch.conn.Close()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch.exited:
	case <-t.C:
		_ = ch.cmd.Process.Kill()
		<-ch.exited
	}
	<-ch.events.done
}
