package logcap

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// A flood of one key lets Burst lines through, and one summary counts the
// rest; another key is not held back by it.
func TestFloodSummarised(t *testing.T) {
	type sum struct {
		key string
		n   int
	}
	got := make(chan sum, 10)
	l := New(Config{Interval: 200 * time.Millisecond, Burst: 3, Summary: func(k string, n int) { got <- sum{k, n} }})
	defer l.Close()
	passed := 0
	for range 20000 {
		if l.Allow("10.0.0.1") {
			passed++
		}
	}
	if passed != 3 {
		t.Errorf("%d lines of the flood passed, want 3", passed)
	}
	if !l.Allow("10.0.0.2") {
		t.Error("a line of another key was suppressed")
	}
	select {
	case s := <-got:
		if s != (sum{"10.0.0.1", 19997}) {
			t.Errorf("summary %+v, want 19997 suppressed for 10.0.0.1", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no summary")
	}
	// The next interval lets lines through again.
	if !l.Allow("10.0.0.1") {
		t.Error("after the summary, a line was suppressed")
	}
}

// Keys beyond MaxKeys share one entry: the map stays bounded.
func TestKeysBounded(t *testing.T) {
	var mu sync.Mutex
	sums := map[string]int{}
	l := New(Config{Interval: time.Hour, Burst: 1, MaxKeys: 8, Summary: func(k string, n int) { mu.Lock(); sums[k] += n; mu.Unlock() }})
	defer l.Close()
	passed := 0
	for i := range 1000 {
		if l.Allow(fmt.Sprintf("peer-%d", i)) {
			passed++
		}
	}
	if n := len(l.keys); n > 8 {
		t.Errorf("%d keys tracked, bound 8", n)
	}
	if passed != 8 {
		t.Errorf("%d lines passed, want 8 (7 keys and the shared entry)", passed)
	}
}
