package main

import (
	"context"
	"errors"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/memtrim"
)

// lineWriter hands every log line to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// TestTrimAtRest: once the node is ready and settled, it gives back the
// binary's start-up pages (and says how many), then again after a change
// (memtrim.Changed) once it is quiet, and runs until stopped.
func TestTrimAtRest(t *testing.T) {
	lines := make(lineWriter, 16)
	log := slog.New(slog.NewTextHandler(lines, nil))
	ctx, cancel := context.WithCancel(t.Context())
	ready := make(chan struct{})
	readyFn := func() error {
		select {
		case <-ready:
			return nil
		default:
			return errors.New("not yet")
		}
	}
	done := make(chan error, 1)
	go func() { done <- trimAtRest(ctx, readyFn, trimConfig{}, log) }()
	close(ready)
	select {
	case l := <-lines:
		m := regexp.MustCompile(`msg="gave back start-up memory" binary_kib=(\d+)`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("log %q, want the trim reported", l)
		}
		if kib, _ := strconv.Atoi(m[1]); kib <= 0 {
			t.Errorf("trim gave back %d KiB of the binary, want some", kib)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no trim once ready")
	}
	memtrim.Changed()
	select {
	case l := <-lines:
		if !strings.Contains(l, `msg="gave back memory after a burst of changes" binary_kib=`) {
			t.Fatalf("log %q, want the quiet trim reported", l)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no trim after a change")
	}
	select {
	case err := <-done:
		t.Fatalf("trimAtRest returned %v before the node stopped", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("trimAtRest at stop: %v", err)
	}
}
