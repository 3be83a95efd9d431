package reflector

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MRT (RFC 6396) export: TABLE_DUMP_V2 snapshots of the RIB, on demand
// (Reflector.WriteMRT, the control socket's GET /mrt/dump) and every
// DumpInterval into Dir; and an update log of every received UPDATE as
// BGP4MP_MESSAGE_AS4 records, rotated every UpdateLogRotate.
//
// A snapshot is taken in the RIB loop (so it is consistent: one instant
// of the RIB) and encoded there, then written outside it; one snapshot
// at a time. The update log is fed from the RIB loop through a bounded
// queue (UpdateLogBuffer): when its writer falls behind, records are
// dropped and counted (mrt_update_log_dropped_total), never waited for.

// MRTConfig configures MRT export.
type MRTConfig struct {
	// Dir receives the periodic snapshots and the update log.
	Dir string
	// DumpInterval is the period of the snapshots (rib.YYYYMMDD.HHMMSS.mmm.mrt);
	// zero means none.
	DumpInterval time.Duration
	// Keep is how many files of each kind stay in Dir; older ones are
	// removed. Zero means 24.
	Keep int
	// UpdateLog writes every received UPDATE (updates.YYYYMMDD.HHMMSS.mmm.mrt).
	UpdateLog bool
	// UpdateLogRotate is how long one update-log file covers; zero means
	// 15 minutes.
	UpdateLogRotate time.Duration
	// UpdateLogBuffer bounds the records waiting for the update log's
	// writer, in bytes; zero means 16 MiB.
	UpdateLogBuffer int
}

const (
	defaultMRTKeep         = 24
	defaultMRTRotate       = 15 * time.Minute
	defaultMRTUpdateBuffer = 16 << 20
	logKeyFile             = "file"
)

func (c MRTConfig) validate() (MRTConfig, error) {
	var errs []error
	if (c.DumpInterval != 0 || c.UpdateLog) && c.Dir == "" {
		errs = append(errs, errors.New("MRT.Dir: required for periodic dumps and the update log"))
	}
	if c.DumpInterval < 0 {
		errs = append(errs, errors.New("MRT.DumpInterval: must not be negative"))
	} else if c.DumpInterval > 0 && c.DumpInterval < time.Second {
		errs = append(errs, errors.New("MRT.DumpInterval: at least 1s"))
	}
	if c.Keep < 0 {
		errs = append(errs, errors.New("MRT.Keep: must not be negative"))
	}
	if c.UpdateLogRotate < 0 {
		errs = append(errs, errors.New("MRT.UpdateLogRotate: must not be negative"))
	}
	if c.UpdateLogBuffer < 0 {
		errs = append(errs, errors.New("MRT.UpdateLogBuffer: must not be negative"))
	}
	if c.Keep == 0 {
		c.Keep = defaultMRTKeep
	}
	if c.UpdateLogRotate == 0 {
		c.UpdateLogRotate = defaultMRTRotate
	}
	if c.UpdateLogBuffer == 0 {
		c.UpdateLogBuffer = defaultMRTUpdateBuffer
	}
	return c, errors.Join(errs...)
}

// MRTSummary describes one snapshot.
type MRTSummary struct {
	Peers, Prefixes, Paths int
	Bytes                  int
}

// mrtState serialises snapshots.
type mrtState struct {
	mu sync.Mutex
}

// WriteMRT writes a TABLE_DUMP_V2 snapshot of the RIB to w: the
// PEER_INDEX_TABLE, then one RIB_IPV4_UNICAST or RIB_IPV6_UNICAST record
// per prefix with every path the RIB holds for it (stale ones included),
// and one RIB_GENERIC record per NLRI of the other families.
// Entries' originated time is the snapshot's (the RIB does not keep when
// each path arrived).
func (r *Reflector) WriteMRT(ctx context.Context, w io.Writer) (MRTSummary, error) {
	r.mrt.mu.Lock()
	defer r.mrt.mu.Unlock()
	var b []byte
	var sum MRTSummary
	if !r.env.rib.call(ctx, func(rl *ribLoop) { b, sum = rl.mrtSnapshot(time.Now(), r.local.routerID) }) {
		if err := context.Cause(ctx); err != nil {
			return sum, fmt.Errorf("MRT dump: %w", err)
		}
		return sum, errors.New("MRT dump: the reflector is not running")
	}
	sum.Bytes = len(b)
	if _, err := w.Write(b); err != nil {
		return sum, fmt.Errorf("MRT dump: writing: %w", err)
	}
	return sum, nil
}

// mrtSnapshot encodes the RIB; it runs in the RIB loop.
func (rl *ribLoop) mrtSnapshot(ts time.Time, routerID uint32) ([]byte, MRTSummary) {
	rl.flush() // emptied prefixes go
	var sum MRTSummary
	index := map[*ribPeer]uint16{}
	var peers []mrtPeer
	for _, rp := range rl.ix.peers {
		if rp == nil || len(peers) == 1<<16-1 {
			continue
		}
		index[rp] = uint16(len(peers))
		peers = append(peers, mrtPeer{routerID: rp.routerID, addr: rp.addr, asn: rp.asn})
	}
	sum.Peers = len(peers)
	b := appendPeerIndexTable(nil, ts, routerID, "", peers)
	var entries []mrtEntry
	seq := uint32(0)
	type encKey struct {
		a       *attrs
		generic bool
	}
	enc := map[encKey][]byte{}
	entry := func(pa path, generic bool) (mrtEntry, bool) {
		pi, ok := index[pa.src]
		if !ok {
			return mrtEntry{}, false // past the 65,535 peers a PEER_INDEX_TABLE can list
		}
		ab, ok := enc[encKey{pa.a, generic}]
		if !ok {
			ab = mrtAttrs(pa.a, generic)
			enc[encKey{pa.a, generic}] = ab
		}
		return mrtEntry{peer: pi, originated: uint32(ts.Unix()), attrs: ab}, true
	}
	var nlri []byte
	for _, t := range rl.tables {
		if t.fam.generic() {
			// RIB_GENERIC (RFC 6396 4.3.3), one record per NLRI: the
			// paths of a route whose labels (or ESI, gateway) differ
			// have different NLRIs, so one record per distinct extra.
			t.each(func(k pfxKey, n uint32) {
				ps := t.paths(n)
				for i, first := range ps {
					if slices.ContainsFunc(ps[:i], func(q path) bool { return q.a.extra == first.a.extra }) {
						continue // its extra's record is written
					}
					entries = entries[:0]
					for _, pa := range ps[i:] {
						if pa.a.extra != first.a.extra {
							continue
						}
						if e, ok := entry(pa, true); ok {
							entries = append(entries, e)
						}
					}
					if len(entries) == 0 {
						continue
					}
					nlri = genJoin(nlri[:0], t.fam, t.keys[k.hi], first.a.extra)
					b = appendRIBGenericRecord(b, ts, t.fam, seq, nlri, entries)
					seq++
					sum.Prefixes++
					sum.Paths += len(entries)
				}
			})
			continue
		}
		t.each(func(k pfxKey, n uint32) {
			entries = entries[:0]
			for _, pa := range t.paths(n) {
				if e, ok := entry(pa, false); ok {
					entries = append(entries, e)
				}
			}
			if len(entries) == 0 {
				return
			}
			b = appendRIBRecord(b, ts, t.fam, seq, k, entries)
			seq++
			sum.Prefixes++
			sum.Paths += len(entries)
		})
	}
	return b, sum
}

// mrtFileName is a file of kind ("rib", "updates") for time t.
func mrtFileName(kind string, t time.Time) string {
	return kind + "." + t.UTC().Format("20060102.150405.000") + ".mrt"
}

// writeMRTFile writes a snapshot into dir (through a temporary file, so
// that a reader never sees half of one) and removes the oldest
// snapshots beyond keep.
func (r *Reflector) writeMRTFile(ctx context.Context, dir string, keep int) (string, MRTSummary, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", MRTSummary{}, fmt.Errorf("MRT dump: %w", err)
	}
	name := filepath.Join(dir, mrtFileName("rib", time.Now()))
	f, err := os.CreateTemp(dir, ".rib-*.tmp")
	if err != nil {
		return "", MRTSummary{}, fmt.Errorf("MRT dump: %w", err)
	}
	defer os.Remove(f.Name())
	sum, err := r.WriteMRT(ctx, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("MRT dump: %w", cerr)
	}
	if err != nil {
		return "", sum, err
	}
	if err := os.Rename(f.Name(), name); err != nil {
		return "", sum, fmt.Errorf("MRT dump: %w", err)
	}
	return name, sum, pruneMRT(dir, "rib", keep)
}

// pruneMRT removes the oldest files of kind beyond keep.
func pruneMRT(dir, kind string, keep int) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("MRT rotation: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, kind+".") && strings.HasSuffix(n, ".mrt") {
			names = append(names, n)
		}
	}
	slices.Sort(names) // the names sort by time
	var errs []error
	for len(names) > keep {
		if err := os.Remove(filepath.Join(dir, names[0])); err != nil {
			errs = append(errs, fmt.Errorf("MRT rotation: %w", err))
		}
		names = names[1:]
	}
	return errors.Join(errs...)
}

// runMRTDumps writes a snapshot every DumpInterval until ctx ends.
func (r *Reflector) runMRTDumps(ctx context.Context, wg *sync.WaitGroup) {
	c := r.cfg.MRT
	if c.DumpInterval <= 0 {
		return
	}
	wg.Go(func() {
		t := time.NewTicker(c.DumpInterval)
		defer t.Stop()
		failing := false // log the first failure and the recovery, not each
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			name, sum, err := r.writeMRTFile(ctx, c.Dir, c.Keep)
			switch {
			case err != nil && ctx.Err() != nil:
				return
			case err != nil:
				if !failing {
					r.log.Warn("periodic MRT dump failed; retrying every interval", logKeyErr, err)
				}
				failing = true
			default:
				if failing {
					r.log.Info("periodic MRT dumps written again", logKeyFile, name)
				}
				failing = false
				r.log.Debug("MRT dump written", logKeyFile, name, logKeyPrefixes, sum.Prefixes)
			}
		}
	})
}

// mrtLog is the update log: a bounded queue that the RIB loop appends
// to, and a writer that rotates files.
type mrtLog struct {
	cfg     MRTConfig
	log     *slog.Logger
	dropped prometheus.Counter
	written prometheus.Counter

	mu      sync.Mutex
	chunks  [][]byte
	bytes   int
	drops   int // since the last summary
	notify  chan struct{}
	nowFunc func() time.Time
}

func newMRTLog(cfg MRTConfig, log *slog.Logger) *mrtLog {
	return &mrtLog{
		cfg: cfg, log: log, notify: make(chan struct{}, 1), nowFunc: time.Now,
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNS, Name: "mrt_update_log_dropped_total",
			Help: "Received UPDATEs not written to the MRT update log because its buffer was full."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricsNS, Name: "mrt_update_log_records_total",
			Help: "BGP4MP records written to the MRT update log."}),
	}
}

// updates queues a record per UPDATE of raw from mp; it never blocks.
func (l *mrtLog) updates(mp *monPeer, localAS uint32, ts time.Time, raw [][]byte) {
	var b []byte
	for _, body := range raw {
		b = appendBGP4MPMessage(b, ts, mp.bmp.asn, localAS, mp.bmp.addr, mp.local, body)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bytes+len(b) > l.cfg.UpdateLogBuffer {
		l.drops += len(raw)
		l.dropped.Add(float64(len(raw)))
		return
	}
	l.chunks = append(l.chunks, b)
	l.bytes += len(b)
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

func (l *mrtLog) take() ([][]byte, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.chunks
	l.chunks, l.bytes = nil, 0
	d := l.drops
	l.drops = 0
	return c, d
}

// run writes the queue into the current file, rotating it every
// UpdateLogRotate, until ctx ends.
func (l *mrtLog) run(ctx context.Context) {
	var f *os.File
	var w *bufio.Writer
	closeFile := func() {
		if f != nil {
			if err := errors.Join(w.Flush(), f.Close()); err != nil {
				l.log.Warn("MRT update log", logKeyErr, err)
			}
			f = nil
		}
	}
	defer closeFile()
	failing := false
	rotate := time.NewTicker(l.cfg.UpdateLogRotate)
	defer rotate.Stop()
	for {
		stopping := false
		select {
		case <-ctx.Done():
			stopping = true // write what is queued, then stop
		case <-rotate.C:
			closeFile()
			continue
		case <-l.notify:
		}
		chunks, drops := l.take()
		if stopping && len(chunks) == 0 {
			return
		}
		if drops > 0 {
			l.log.Warn("MRT update log fell behind: UPDATEs not logged", logKeyCount, drops)
		}
		if f == nil {
			now := l.nowFunc()
			name := filepath.Join(l.cfg.Dir, mrtFileName("updates", now))
			err := os.MkdirAll(l.cfg.Dir, 0o755)
			if err == nil {
				f, err = os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			}
			if err != nil {
				if !failing {
					l.log.Warn("MRT update log: cannot open its file; UPDATEs are not logged until it can", logKeyErr, err)
				}
				failing, f = true, nil
				l.dropped.Add(float64(countMRT(chunks)))
				continue
			}
			w = bufio.NewWriterSize(f, 64<<10)
			if err := pruneMRT(l.cfg.Dir, "updates", l.cfg.Keep); err != nil {
				l.log.Warn("MRT update log", logKeyErr, err)
			}
		}
		for i, c := range chunks {
			if _, err := w.Write(c); err != nil {
				l.writeFailed(err, failing, chunks[i:])
				failing = true
				closeFile()
				break
			}
			l.written.Add(float64(countMRT(c)))
		}
		if f != nil {
			if err := w.Flush(); err != nil {
				l.writeFailed(err, failing, nil)
				failing = true
				closeFile()
			} else {
				failing = false // a failure logs once until records are written again
			}
		}
		if stopping {
			return
		}
	}
}

// writeFailed logs a failed write (once until a file opens again) and
// counts the records lost.
func (l *mrtLog) writeFailed(err error, failing bool, lost [][]byte) {
	if !failing {
		l.log.Warn("MRT update log: write failed; records are lost until a new file opens", logKeyErr, err)
	}
	l.dropped.Add(float64(countMRT(lost)))
}

// countMRT counts the records in chunks of whole records.
func countMRT[T []byte | [][]byte](b T) int {
	switch v := any(b).(type) {
	case []byte:
		n := 0
		for len(v) >= mrtHeaderLen {
			l := mrtHeaderLen + int(uint32(v[8])<<24|uint32(v[9])<<16|uint32(v[10])<<8|uint32(v[11]))
			if l > len(v) {
				break
			}
			v = v[l:]
			n++
		}
		return n
	case [][]byte:
		n := 0
		for _, c := range v {
			n += countMRT(c)
		}
		return n
	}
	return 0
}
