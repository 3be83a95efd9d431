package memtrim

import (
	"context"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// The decision: a trim is due settle after the last change, not within
// minGap of the last trim, and only after a change.
func TestQuietDecision(t *testing.T) {
	q := quiet{settle: 30 * time.Second, minGap: 600 * time.Second}
	if _, ok := q.due(); ok {
		t.Fatal("a trim is due with no change")
	}
	// A burst: the trim waits for 30 s after its last change.
	q.changed(at(0))
	q.changed(at(20))
	if q.trimNow(at(49)) {
		t.Error("trim due 29 s after the last change")
	}
	if due, _ := q.due(); !due.Equal(at(50)) || !q.trimNow(at(50)) {
		t.Errorf("trim due at %v, want 30 s after the last change (%v)", due, at(50))
	}
	q.trimmed(at(50))
	// Quiet since: no trim, however long (no loop).
	if _, ok := q.due(); ok || q.trimNow(at(100000)) {
		t.Error("a trim is due again without a change")
	}
	// A change soon after: settled at 130 s, but the gap holds it to 650.
	q.changed(at(100))
	if due, _ := q.due(); !due.Equal(at(650)) {
		t.Errorf("trim due at %v, want the last trim + 10 min (%v)", due, at(650))
	}
	if q.trimNow(at(640)) {
		t.Error("trim due within the gap")
	}
	// Changes that go on past the gap hold it until they settle.
	q.changed(at(640))
	if due, _ := q.due(); !due.Equal(at(670)) {
		t.Errorf("trim due at %v, want 30 s after the last change (%v)", due, at(670))
	}
	q.trimmed(at(670))
	if _, ok := q.due(); ok {
		t.Error("a trim is due right after one")
	}

	// A start-up trim given as the last trim counts for the gap.
	q = quiet{settle: 30 * time.Second, minGap: 600 * time.Second, lastTrim: at(0)}
	q.changed(at(10))
	if due, _ := q.due(); !due.Equal(at(600)) {
		t.Errorf("after a trim at 0 s: trim due at %v, want %v", due, at(600))
	}
}

// fakeClock is WhenQuiet's clock in a test: the test sets the time and
// fires the timer WhenQuiet asked for.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers chan fakeTimer
}

type fakeTimer struct {
	d    time.Duration
	fire chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	ft := fakeTimer{d: d, fire: make(chan time.Time, 1)}
	c.timers <- ft
	return ft.fire, func() {}
}

// WhenQuiet runs the decision on Changed's signal and its clock: the
// timer it arms is settle after a change, the trim runs when it fires,
// and the next change waits for the gap.
func TestWhenQuiet(t *testing.T) {
	clock := &fakeClock{now: at(0), timers: make(chan fakeTimer)}
	trims := make(chan time.Time, 4)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WhenQuiet(ctx, QuietConfig{
			Settle: 30 * time.Second, MinGap: 600 * time.Second,
			Trim: func() { trims <- clock.Now() },
			Now:  clock.Now, After: clock.After,
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	next := func(want time.Duration) fakeTimer {
		t.Helper()
		select {
		case ft := <-clock.timers:
			if ft.d != want {
				t.Fatalf("timer armed for %v, want %v", ft.d, want)
			}
			return ft
		case <-time.After(30 * time.Second):
			t.Fatalf("no timer armed, want one for %v", want)
		}
		return fakeTimer{}
	}

	clock.set(at(5))
	Changed()
	ft := next(30 * time.Second)
	// Another change re-arms the timer from it.
	clock.set(at(10))
	Changed()
	ft = next(30 * time.Second)
	clock.set(at(40))
	ft.fire <- at(40)
	if got := <-trims; !got.Equal(at(40)) {
		t.Errorf("trimmed at %v, want %v", got, at(40))
	}
	// A change 20 s after the trim: due at the gap's end, 600 s after it.
	clock.set(at(60))
	Changed()
	ft = next(580 * time.Second)
	// A stale timer (fired before the gap's end, the clock not there yet)
	// does not trim; the timer is armed again for what is left.
	clock.set(at(100))
	ft.fire <- at(100)
	ft = next(540 * time.Second)
	clock.set(at(640))
	ft.fire <- at(640)
	if got := <-trims; !got.Equal(at(640)) {
		t.Errorf("trimmed at %v, want %v", got, at(640))
	}
	select {
	case got := <-trims:
		t.Errorf("trimmed again at %v", got)
	default:
	}
}

// Trim deals with the changes marked before it: no quiet trim for them.
func TestTrimClearsChanges(t *testing.T) {
	Changed()
	if _, err := Trim(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changes:
		t.Error("a change marked before Trim is still pending after it")
	default:
	}
}
