package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestGrowsWithJitterAndResets: pauses double from min to max, each in
// [d/2, d], and Reset starts again from min.
func TestGrowsWithJitterAndResets(t *testing.T) {
	for _, r := range []float64{0, 0.999} {
		b := New(100*time.Millisecond, time.Second)
		b.rand = func() float64 { return r }
		want := []time.Duration{100, 200, 400, 800, 1000, 1000}
		for i, w := range want {
			w *= time.Millisecond
			got := b.Next()
			if got > w || got < w/2 {
				t.Fatalf("rand %v, pause %d: %v, want in [%v, %v]", r, i, got, w/2, w)
			}
			if r == 0 && got != w {
				t.Fatalf("pause %d without jitter: %v, want %v", i, got, w)
			}
		}
		b.Reset()
		if got := b.Next(); got > 100*time.Millisecond {
			t.Fatalf("after Reset: %v, want at most 100ms", got)
		}
	}
}

// TestJitterSpreads: two loops that fail together do not wait the same
// pauses (the point of jitter).
func TestJitterSpreads(t *testing.T) {
	a, b := New(time.Second, time.Minute), New(time.Second, time.Minute)
	same := 0
	for range 20 {
		if a.Next() == b.Next() {
			same++
		}
	}
	if same == 20 {
		t.Fatal("two backoffs produced identical pauses: no jitter")
	}
}

// TestWaitEndsWithContext: Wait returns false as soon as ctx ends.
func TestWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		b := New(time.Hour, time.Hour)
		done := make(chan bool)
		go func() { done <- b.Wait(ctx) }()
		synctest.Wait()
		cancel()
		if <-done {
			t.Fatal("Wait reported a full pause after ctx ended")
		}
		if !New(time.Second, time.Second).Wait(t.Context()) {
			t.Fatal("Wait reported ctx ended for a full pause")
		}
	})
}
