package speakerproc

import (
	"bufio"
	"context"
	"encoding/gob"
	"io"
	"testing"
	"time"

	"github.com/bgpfabric/bgpfabric/internal/memtrim"
	"github.com/bgpfabric/bgpfabric/router/speaker"
)

// pathsOnly is a speaker whose only working part is its path watches:
// each calls back once with one path.
type pathsOnly struct{ speaker.Speaker }

func (pathsOnly) WatchBestPaths(_ context.Context, fn func([]speaker.Destination)) error {
	go fn([]speaker.Destination{{}})
	return nil
}

func (pathsOnly) WatchReceived(_ context.Context, fn func([]speaker.Received)) error {
	go fn([]speaker.Received{{}})
	return nil
}

// TestPathsMarkChanges: a path the child streams to the parent arms the
// child's quiet trim (memtrim.Changed), for both kinds of path stream, so
// the child trims again once a burst of paths has settled.
func TestPathsMarkChanges(t *testing.T) {
	for _, received := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		armed := memtrim.WatchArming(ctx)
		bw := bufio.NewWriter(io.Discard)
		w := &writer{bw: bw, enc: gob.NewEncoder(bw)}
		if err := watchPaths(ctx, pathsOnly{}, received, w); err != nil {
			t.Fatal(err)
		}
		select {
		case <-armed:
		case <-ctx.Done():
			t.Errorf("received=%v: a streamed path marked no change", received)
		}
		cancel()
	}
}
