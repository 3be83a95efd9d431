package latest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// rec is a status-like value: a state, a counter and a timestamp.
type rec struct {
	state   string
	counter int
	stamp   time.Time
}

func compareRec(a, b rec) Change {
	switch {
	case a.state != b.state:
		return State
	case a.counter != b.counter:
		return Counters
	}
	return Same // the stamp alone is not news
}

// store is a counting fake of the datastore.
type store struct {
	mu       sync.Mutex
	writes   []rec
	attempts []time.Time
	fail     bool
	block    chan struct{} // if set, a write waits for it
}

func (s *store) write(ctx context.Context, r rec) error {
	s.mu.Lock()
	s.attempts = append(s.attempts, time.Now())
	block, fail := s.block, s.fail
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail {
		return errors.New("etcdserver: too many requests")
	}
	s.mu.Lock()
	s.writes = append(s.writes, r)
	s.mu.Unlock()
	return nil
}

func (s *store) counts() (writes, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes), len(s.attempts)
}

func (s *store) last() rec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes[len(s.writes)-1]
}

// start runs a writer on s inside the current synctest bubble.
func start(t *testing.T, s *store) *Writer[rec] {
	w := New(s.write, nil, "test")
	w.Compare = compareRec
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// TestUnchangedIsNotRewritten: the same state, with a new timestamp each
// time, every second for ten minutes, is written once.
func TestUnchangedIsNotRewritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &store{}
		w := start(t, s)
		for range 600 {
			w.Put(rec{state: "Established", counter: 7, stamp: time.Now()})
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if n, a := s.counts(); n != 1 || a != 1 {
			t.Fatalf("an unchanged status was written %d times (%d attempts), want once", n, a)
		}
	})
}

// TestRapidChangesCoalesce: 1,000 state changes in 10 s are written at
// most once per MinInterval, and the last one is what the store ends
// with.
func TestRapidChangesCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &store{}
		w := start(t, s)
		begin := time.Now()
		for i := range 1000 {
			w.Put(rec{state: string(rune('a' + i%26)), counter: i})
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(2 * DefaultMinInterval) // the pending one goes out
		synctest.Wait()
		elapsed := time.Since(begin)
		n, _ := s.counts()
		bound := int(elapsed/DefaultMinInterval) + 1
		if n > bound || n < 2 {
			t.Fatalf("1000 changes in %v: %d writes, want between 2 and %d", elapsed, n, bound)
		}
		if got := s.last(); got.counter != 999 {
			t.Fatalf("store ends with %+v, want the latest value (counter 999)", got)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for i := 1; i < len(s.attempts); i++ {
			if gap := s.attempts[i].Sub(s.attempts[i-1]); gap < DefaultMinInterval {
				t.Fatalf("writes %d and %d only %v apart, want at least %v", i-1, i, gap, DefaultMinInterval)
			}
		}
	})
}

// TestCountersAreWrittenSlowly: a counter that moves every second is
// written about once per SlowInterval, not every second; a state change
// among them goes out within MinInterval.
func TestCountersAreWrittenSlowly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &store{}
		w := start(t, s)
		for i := range 600 {
			w.Put(rec{state: "Established", counter: i})
			time.Sleep(time.Second)
		}
		synctest.Wait()
		n, _ := s.counts()
		// 1 first write + at most 600 s / (0.75 × 60 s) slow writes.
		if max := 1 + int(600*time.Second/(DefaultSlowInterval*3/4)); n > max || n < 2 {
			t.Fatalf("a counter moving every second for 10 min: %d writes, want between 2 and %d", n, max)
		}
		w.Put(rec{state: "Idle", counter: 600})
		time.Sleep(DefaultMinInterval)
		synctest.Wait()
		if got := s.last(); got.state != "Idle" {
			t.Fatalf("a state change was not written within %v: store has %+v", DefaultMinInterval, got)
		}
	})
}

// TestRetriesBackOff: against a store that refuses every write for ten
// minutes, attempts back off exponentially (with jitter) to RetryMax
// instead of retrying every second; when the store is back the latest
// value is written.
func TestRetriesBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &store{fail: true}
		w := start(t, s)
		w.Put(rec{state: "a"})
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		_, a := s.counts()
		// Pauses of ≥ 0.5, 1, 2, 4, 8 s, then ≥ 15 s each: ≤ 5 + 600/15.
		if a > 45 || a < 10 {
			t.Fatalf("10 min of refusals: %d attempts, want between 10 and 45 (backoff to %v)", a, DefaultRetryMax)
		}
		s.mu.Lock()
		gaps := len(s.attempts)
		first, lastGap := s.attempts[1].Sub(s.attempts[0]), s.attempts[gaps-1].Sub(s.attempts[gaps-2])
		s.fail = false
		s.mu.Unlock()
		if lastGap < 4*first {
			t.Fatalf("pauses did not grow: first %v, last %v", first, lastGap)
		}
		w.Put(rec{state: "b"})
		time.Sleep(DefaultRetryMax)
		synctest.Wait()
		if n, _ := s.counts(); n != 1 || s.last().state != "b" {
			t.Fatalf("after the store came back: %d writes, want the latest value once", n)
		}
	})
}

// TestLatestWinsWhileWriting: while a write hangs, newer values replace
// the pending one: only the latest is written next.
func TestLatestWinsWhileWriting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		s := &store{block: block}
		w := start(t, s)
		w.Put(rec{state: "1"})
		synctest.Wait() // 1 is being written
		w.Put(rec{state: "2"})
		w.Put(rec{state: "3"})
		s.mu.Lock()
		s.block = nil
		s.mu.Unlock()
		close(block)
		time.Sleep(2 * DefaultMinInterval)
		synctest.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.writes) != 2 || s.writes[0].state != "1" || s.writes[1].state != "3" {
			t.Fatalf("written %+v, want states 1 then 3", s.writes)
		}
	})
}
