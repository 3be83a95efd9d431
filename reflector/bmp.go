package reflector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/prometheus/client_golang/prometheus"
)

// BMP (RFC 7854) export. The reflector connects to each collector (the
// active side, as BIRD, FRR and GoBGP do) and, once connected, sends an
// Initiation, a Peer Up for every established session, every session's
// routes as received (pre-policy Adj-RIB-In Route Monitoring) with an
// End-of-RIB per family, and from then on the live stream: Peer Up and
// Peer Down as sessions come and go, every received UPDATE as a Route
// Monitoring message carrying the PDU as received, and a Statistics
// Report per session every StatsInterval.
//
// The reflector is never slowed by a collector: the RIB loop appends to
// a collector's queue without waiting, and a writer goroutine per
// collector drains it. When the live messages queued pass BufferBytes,
// the queue is discarded and its messages counted as dropped
// (bmp_dropped_messages_total), and the connection is closed and opened
// again at once: the collector then gets a fresh Initiation and dump, so
// it is never left with a silent gap (bmp_resyncs_total). The dump does
// not count against the limit (it is at most the RIB's size, once per
// connection). Failed connections are retried with exponential backoff
// (1 s doubling to 60 s, each wait drawn at random in its upper half).

// BMPConfig configures BMP export.
type BMPConfig struct {
	// Collectors are the BMP stations to connect to.
	Collectors []BMPCollector
	// StatsInterval is the period of the Statistics Reports; zero means
	// 60 s.
	StatsInterval time.Duration
	// SysName is the Initiation's sysName; empty means the host name.
	SysName string
	// LocRIB adds Loc-RIB monitoring (RFC 9069): the best path of every
	// prefix, after import policy, as the Loc-RIB instance peer, with its
	// changes as they happen.
	LocRIB bool
}

// BMPCollector is one BMP station.
type BMPCollector struct {
	// Address is the station's "host:port".
	Address string
	// BufferBytes bounds the live messages queued for the station; zero
	// means 16 MiB.
	BufferBytes int
}

// logKeyCollector is a BMP collector's configured address.
const logKeyCollector = "collector"

const (
	defaultBMPBuffer        = 16 << 20
	defaultBMPStatsInterval = 60 * time.Second
	bmpRetryMin             = time.Second
	bmpRetryMax             = 60 * time.Second
	bmpWriteTimeout         = 30 * time.Second
)

func (c BMPConfig) validate() (BMPConfig, error) {
	var errs []error
	c.Collectors = slices.Clone(c.Collectors)
	seen := map[string]bool{}
	for i, col := range c.Collectors {
		switch err := CheckCollectorAddress(col.Address); {
		case err != nil:
			errs = append(errs, fmt.Errorf("BMP.Collectors[%d].Address: %w", i, err))
		case seen[col.Address]:
			errs = append(errs, fmt.Errorf("BMP.Collectors[%d].Address: %q is configured twice", i, col.Address))
		case col.BufferBytes < 0:
			errs = append(errs, fmt.Errorf("BMP.Collectors[%d].BufferBytes: must not be negative", i))
		}
		seen[col.Address] = true
		if col.BufferBytes == 0 {
			c.Collectors[i].BufferBytes = defaultBMPBuffer
		}
	}
	if c.StatsInterval < 0 {
		errs = append(errs, errors.New("BMP.StatsInterval: must not be negative"))
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = defaultBMPStatsInterval
	}
	if c.SysName == "" {
		c.SysName, _ = os.Hostname()
	}
	return c, errors.Join(errs...)
}

// bmpMetrics count per collector (label: its configured address).
type bmpMetrics struct {
	up       *prometheus.GaugeVec
	sent     *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	resyncs  *prometheus.CounterVec
	connects *prometheus.CounterVec
}

func newBMPMetrics() *bmpMetrics {
	l := []string{"collector"}
	return &bmpMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricsNS, Name: "bmp_collector_up",
			Help: "1 while the BMP collector is connected."}, l),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNS, Name: "bmp_messages_sent_total",
			Help: "BMP messages written to the collector."}, l),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNS, Name: "bmp_dropped_messages_total",
			Help: "BMP messages dropped because the collector's buffer was full (the collector is then resynchronised)."}, l),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNS, Name: "bmp_resyncs_total",
			Help: "Connections to the collector closed and reopened, with a fresh dump, after its buffer overflowed."}, l),
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricsNS, Name: "bmp_connects_total",
			Help: "Connections established to the collector."}, l),
	}
}

func (m *bmpMetrics) collect(ch chan<- prometheus.Metric) {
	m.up.Collect(ch)
	m.sent.Collect(ch)
	m.dropped.Collect(ch)
	m.resyncs.Collect(ch)
	m.connects.Collect(ch)
}

// bmpChunk is a run of whole BMP messages.
type bmpChunk struct {
	b    []byte
	n    int // messages
	dump bool
}

// bmpQueue is a collector's queue. The RIB loop pushes; the writer takes.
// Nothing is queued while no connection is attached.
type bmpQueue struct {
	mu        sync.Mutex
	chunks    []bmpChunk
	bytes     int // live bytes queued (dumps excluded)
	limit     int
	live      bool // attached: a connection wants the stream
	overflow  bool // dropped since attached: the writer must resync
	dropped   int  // messages dropped, not yet counted in the metric
	maxQueued int  // the most live bytes ever queued (tests)
	notify    chan struct{}
	// abort closes the attached connection, so that a write blocked on
	// a collector that stopped reading ends at once on overflow.
	abort func()
}

func newBMPQueue(limit int) *bmpQueue {
	return &bmpQueue{limit: limit, notify: make(chan struct{}, 1)}
}

func (q *bmpQueue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// push queues n messages b; it never blocks. Past the limit the queue is
// emptied and marked for a resync.
func (q *bmpQueue) push(b []byte, n int) {
	if len(b) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.live {
		return
	}
	if q.overflow {
		q.dropped += n
		return
	}
	if q.bytes+len(b) > q.limit {
		q.overflow = true
		q.dropped += n
		for _, c := range q.chunks {
			q.dropped += c.n
		}
		q.chunks, q.bytes = nil, 0
		if q.abort != nil {
			q.abort()
		}
		q.signal()
		return
	}
	q.chunks = append(q.chunks, bmpChunk{b: b, n: n})
	q.bytes += len(b)
	q.maxQueued = max(q.maxQueued, q.bytes)
	q.signal()
}

// attach starts the stream of a new connection with its dump; abort
// closes the connection.
func (q *bmpQueue) attach(dump []byte, abort func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.live, q.overflow, q.abort = true, false, abort
	q.chunks = []bmpChunk{{b: dump, n: countBMP(dump), dump: true}}
	q.bytes = 0
	q.signal()
}

// detach stops queueing and frees what is queued.
func (q *bmpQueue) detach() {
	q.mu.Lock()
	q.live, q.overflow, q.abort = false, false, nil
	q.chunks, q.bytes = nil, 0
	q.mu.Unlock()
}

// isLive reports whether a connection is attached.
func (q *bmpQueue) isLive() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.live
}

// overflowed reports whether the queue overflowed since attached.
func (q *bmpQueue) overflowed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overflow
}

// take returns what is queued, whether the queue overflowed, and the
// drops to count.
func (q *bmpQueue) take() (chunks []bmpChunk, overflow bool, dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	chunks, q.chunks, q.bytes = q.chunks, nil, 0
	dropped, q.dropped = q.dropped, 0
	return chunks, q.overflow, dropped
}

// bmpCollector is one station: its queue and its writer's state.
type bmpCollector struct {
	cfg BMPCollector
	q   *bmpQueue
	log *slog.Logger
	met *bmpMetrics
	// retryMin and retryMax bound the reconnection backoff.
	retryMin, retryMax time.Duration
	// dial opens the connection (a test may replace it).
	dial func(ctx context.Context, addr string) (net.Conn, error)
}

func newBMPCollector(cfg BMPCollector, log *slog.Logger, met *bmpMetrics) *bmpCollector {
	return &bmpCollector{
		cfg: cfg, q: newBMPQueue(cfg.BufferBytes), log: log.With(logKeyCollector, cfg.Address), met: met,
		retryMin: bmpRetryMin, retryMax: bmpRetryMax,
		dial: func(ctx context.Context, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: 10 * time.Second}
			return d.DialContext(ctx, "tcp", addr)
		},
	}
}

// backoff returns the wait before attempt n+1 after n consecutive
// failures: min doubled n times, at most max, drawn in [d/2, d) so that
// reflectors that lost a collector together do not return in lockstep.
func backoff(n int, lo, hi time.Duration, r func(int64) int64) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(r(int64(d/2)+1))
}

// run connects, serves and reconnects until ctx ends; the RIB loop
// attaches each connection (dump, then the live stream).
func (c *bmpCollector) run(ctx context.Context, rl *ribLoop) {
	fails := 0
	label := c.cfg.Address
	for ctx.Err() == nil {
		conn, err := c.dial(ctx, c.cfg.Address)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := backoff(fails, c.retryMin, c.retryMax, rand.Int64N)
			fails++
			if fails == 1 || fails%10 == 0 {
				c.log.Warn("BMP collector unreachable; retrying", logKeyErr, err, logKeyCount, fails, logKeyInterval, wait)
			}
			if !sleepCtx(ctx, wait) {
				return
			}
			continue
		}
		c.met.connects.WithLabelValues(label).Inc()
		if !rl.call(ctx, func(rl *ribLoop) { rl.monAttach(c, func() { conn.Close() }) }) {
			conn.Close()
			return
		}
		c.met.up.WithLabelValues(label).Set(1)
		c.log.Info("BMP collector connected", logKeyAddr, conn.RemoteAddr().String())
		start := time.Now()
		dumped, resync, err := c.serve(ctx, conn)
		c.q.detach()
		// The backoff starts again from its minimum only after a
		// connection that took its dump and lasted: a collector that
		// closes every connection at once is retried (and logged) ever
		// more slowly.
		if dumped && !resync && time.Since(start) >= c.retryMax {
			fails = 0
		}
		c.met.up.WithLabelValues(label).Set(0)
		switch {
		case ctx.Err() != nil:
			return
		case resync:
			c.met.resyncs.WithLabelValues(label).Inc()
			// Reconnecting at once to a collector that cannot keep up
			// would cost a dump a second: the backoff grows until one
			// connection ends otherwise.
			wait := backoff(fails, c.retryMin, c.retryMax, rand.Int64N)
			fails++
			c.log.Warn("BMP collector too slow: messages dropped; reconnecting for a fresh dump", logKeyInterval, wait)
			if !sleepCtx(ctx, wait) {
				return
			}
		default:
			wait := backoff(fails, c.retryMin, c.retryMax, rand.Int64N)
			fails++
			c.log.Warn("BMP collector connection lost; reconnecting", logKeyErr, err, logKeyInterval, wait)
			if !sleepCtx(ctx, wait) {
				return
			}
		}
	}
}

// serve writes the queue to conn until an error, an overflow (resync
// true) or ctx's end, when it sends a Termination. dumped reports
// whether the initial dump was written whole.
func (c *bmpCollector) serve(ctx context.Context, conn net.Conn) (dumped, resync bool, err error) {
	defer conn.Close()
	label := c.cfg.Address
	closed := make(chan struct{})
	go func() { // collectors send nothing: a read ends only when the connection does
		var b [512]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				close(closed)
				return
			}
		}
	}()
	defer func() { conn.Close(); <-closed }()
	for {
		chunks, overflow, dropped := c.q.take()
		if dropped > 0 {
			c.met.dropped.WithLabelValues(label).Add(float64(dropped))
		}
		if overflow {
			return dumped, true, nil
		}
		for _, ch := range chunks {
			conn.SetWriteDeadline(time.Now().Add(bmpWriteTimeout))
			if _, err := conn.Write(ch.b); err != nil {
				if c.q.overflowed() { // aborted by the overflow
					return dumped, true, nil
				}
				return dumped, false, fmt.Errorf("writing to the BMP collector: %w", err)
			}
			c.met.sent.WithLabelValues(label).Add(float64(ch.n))
			dumped = dumped || ch.dump
		}
		select {
		case <-ctx.Done():
			// What is queued (the sessions' Peer Downs, as they closed
			// before the RIB loop stopped), then the Termination.
			conn.SetWriteDeadline(time.Now().Add(notifyGrace))
			chunks, _, _ := c.q.take()
			for _, ch := range chunks {
				if _, err := conn.Write(ch.b); err != nil {
					return dumped, false, nil
				}
			}
			conn.Write(appendTermination(nil))
			return dumped, false, nil
		case <-closed:
			if c.q.overflowed() {
				return dumped, true, nil
			}
			return dumped, false, errors.New("the BMP collector closed the connection")
		case <-c.q.notify:
		}
	}
}

// sleepCtx waits d; it returns false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// newMonitor returns the monitor of cfg, or nil when nothing monitors.
func newMonitor(cfg Config, met *bmpMetrics) (*monitor, error) {
	if len(cfg.BMP.Collectors) == 0 && !cfg.MRT.UpdateLog {
		return nil, nil
	}
	mo := &monitor{
		sysName: cfg.BMP.SysName, routerID: ip4ToUint(cfg.RouterID.AsSlice()), asn: cfg.ASN,
		peers: map[*ribPeer]*monPeer{}, locRIB: cfg.BMP.LocRIB && len(cfg.BMP.Collectors) > 0,
	}
	if mo.locRIB {
		open, err := localOpen(cfg.ASN, cfg.RouterID)
		if err != nil {
			return nil, err
		}
		mo.locPeer = bmpPeer{typ: bmpPeerLocRIB, asn: cfg.ASN, routerID: mo.routerID}
		mo.locUp = appendLocRIBPeerUp(nil, mo.locPeer, time.Now(), open, "global")
	}
	for _, c := range cfg.BMP.Collectors {
		mo.collectors = append(mo.collectors, newBMPCollector(c, cfg.Logger, met))
	}
	if cfg.MRT.UpdateLog {
		mo.updLog = newMRTLog(cfg.MRT, cfg.Logger)
	}
	return mo, nil
}

// runMonitor runs the collectors' writers, the statistics timer and the
// update log's writer until ctx ends.
func (r *Reflector) runMonitor(ctx context.Context, wg *sync.WaitGroup) {
	rl := r.env.rib
	mo := rl.mon
	if mo == nil {
		return
	}
	for _, c := range mo.collectors {
		wg.Go(func() { c.run(ctx, rl) })
	}
	if len(mo.collectors) > 0 {
		wg.Go(func() {
			t := time.NewTicker(r.cfg.BMP.StatsInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					rl.do(ctx, func(rl *ribLoop) { rl.monStats() })
				}
			}
		})
	}
	if mo.updLog != nil {
		wg.Go(func() { mo.updLog.run(ctx) })
	}
}

// collectMonitor adds the BMP and MRT update-log metrics.
func (r *Reflector) collectMonitor(ch chan<- prometheus.Metric) {
	r.bmpMet.collect(ch)
	if mo := r.env.rib.mon; mo != nil && mo.updLog != nil {
		mo.updLog.dropped.Collect(ch)
		mo.updLog.written.Collect(ch)
	}
}

// localOpen is the OPEN that the Loc-RIB's Peer Up carries (RFC 9069
// 5.3: the local speaker's identity and capabilities).
func localOpen(asn uint32, routerID netip.Addr) ([]byte, error) {
	as2 := uint16(asTrans)
	if asn <= 0xffff {
		as2 = uint16(asn)
	}
	caps := []bgp.ParameterCapabilityInterface{
		bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC),
		bgp.NewCapFourOctetASNumber(asn),
	}
	b, err := bgp.NewBGPOpenMessage(as2, 0, routerID.String(),
		[]bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}).Serialize()
	if err != nil {
		return nil, fmt.Errorf("BMP Loc-RIB OPEN: %w", err)
	}
	return b, nil
}
