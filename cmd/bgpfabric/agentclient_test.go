package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/bgpfabric/bgpfabric/datastore"
)

// TestAgentClientWaitsForDatastore: an agent started before its datastore
// (or while it is too busy to answer) waits for it instead of exiting; a
// configuration error still ends it at once.
func TestAgentClientWaitsForDatastore(t *testing.T) {
	dir, err := os.MkdirTemp("", "bf")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "etcd.sock")
	g := &globalOptions{datastore: "unix://" + sock, dialTimeout: 500 * time.Millisecond, logLevel: "error", stderr: io.Discard}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		c, err := g.agentClient(ctx)
		if err == nil {
			c.Close()
		}
		got <- err
	}()
	// The agent has tried (and failed) at least once before etcd starts:
	// one dial timeout and a retry pause.
	select {
	case err := <-got:
		t.Fatalf("agentClient returned before the datastore was up: %v", err)
	case <-time.After(2 * time.Second):
	}
	e, err := datastore.StartEmbedded(ctx, datastore.EmbeddedConfig{DataDir: filepath.Join(dir, "data"), Listen: "unix://" + sock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := <-got; err != nil {
		t.Fatalf("agentClient once the datastore is up: %v", err)
	}

	bad := &globalOptions{datastore: " , ", logLevel: "error", stderr: io.Discard}
	if _, err := bad.agentClient(ctx); err == nil {
		t.Fatal("agentClient accepted no endpoints")
	}
}

func TestRetryableConnect(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("connecting: no answer within 5s: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("connecting: %w", rpctypes.ErrTooManyRequests), true},
		{fmt.Errorf("connecting: %w", rpctypes.ErrNoLeader), true},
		{fmt.Errorf("connecting: %w", rpctypes.ErrPermissionDenied), false},
		{errors.New("connecting to etcd at x: loading TLS files: no such file"), false},
	} {
		if got := retryableConnect(tc.err); got != tc.want {
			t.Errorf("retryableConnect(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
