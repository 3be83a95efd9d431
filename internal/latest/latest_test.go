package latest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestLatestWinsAndRetries: while a write hangs, newer values replace the
// pending one (only the latest is written next); a failed write is
// retried until it succeeds or a newer value replaces it.
func TestLatestWinsAndRetries(t *testing.T) {
	var mu sync.Mutex
	var written []int
	release := make(chan struct{})
	fails := 2
	w := New(func(ctx context.Context, v int) error {
		if v == 1 {
			<-release // the store hangs on the first write
		}
		mu.Lock()
		defer mu.Unlock()
		if v == 4 && fails > 0 {
			fails--
			return errors.New("store unavailable")
		}
		written = append(written, v)
		return nil
	}, nil, "test")
	w.Retry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()

	w.Put(1)
	time.Sleep(20 * time.Millisecond) // 1 is being written
	w.Put(2)
	w.Put(3) // replaces 2
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(written)
		mu.Unlock()
		if n == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	w.Put(4) // fails twice, then is written
	for {
		mu.Lock()
		n := len(written)
		mu.Unlock()
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	got := append([]int(nil), written...)
	mu.Unlock()
	if want := []int{1, 3, 4}; len(got) != 3 || got[0] != 1 || got[1] != 3 || got[2] != 4 {
		t.Fatalf("written %v, want %v", got, want)
	}
	cancel()
	<-done
}
