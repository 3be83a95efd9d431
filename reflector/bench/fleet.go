package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The fleet case: n clients, as compute nodes are, each announce p
// prefixes and must receive every other client's. It measures the time
// from the first connection until every session is established, and until
// every client holds the full table (all prefixes but its own).

// maxFleet bounds -clients: 127.1.0.1 upwards, 250 addresses per /24.
const maxFleet = 250 * 250

// fleetReadBuf is a fleet client's read buffer: enough for a few full
// UPDATEs, small enough for thousands of clients in one process.
const fleetReadBuf = 16 << 10

// fleetDialers bounds the connections being set up at once.
const fleetDialers = 128

func fleetAddrs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)
	}
	return out
}

// driveFleet runs the fleet case against d. It returns the time until all
// were established, until all converged, and the daemon's CPU time over
// the whole run.
func driveFleet(ctx context.Context, d *daemon, port int, c benchCase) (estab, conv, cpu time.Duration, err error) {
	total := c.n * c.p
	want := total - c.p // split horizon: never one's own
	// FRR closes sessions established in its first second.
	select {
	case <-time.After(1500 * time.Millisecond):
	case <-ctx.Done():
		return 0, 0, 0, ctx.Err()
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		mu       sync.Mutex
		speakers []*speaker
	)
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range speakers {
			s.conn.Close()
		}
	}()
	addrs := fleetAddrs(c.n)
	done := make(chan error, c.n)
	up := make(chan error, c.n)
	sem := make(chan struct{}, fleetDialers)
	cpu0 := d.cpuTime()
	start := time.Now()
	go func() {
		for i, a := range addrs {
			select {
			case sem <- struct{}{}:
			case <-sctx.Done():
				return
			}
			go func() {
				s, err := dialFleetClient(sctx, a, port, 0x0A100000+uint32(i+1))
				<-sem
				if err != nil {
					up <- err
					return
				}
				mu.Lock()
				speakers = append(speakers, s)
				mu.Unlock()
				up <- nil
				go s.keepalives(sctx)
				go s.monitorWant(total, want, done)
				if err := s.write(injectorBlob(i, c.p)); err != nil {
					done <- fmt.Errorf("%s: announcing: %w", a, err)
				}
			}()
		}
	}()
	finished := 0
	for upCount := 0; upCount < c.n; {
		select {
		case err := <-up:
			if err != nil {
				return 0, 0, 0, err
			}
			upCount++
		case err := <-done:
			if err != nil {
				return 0, 0, 0, err
			}
			finished++
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		}
	}
	estab = time.Since(start)
	for ; finished < c.n; finished++ {
		select {
		case err := <-done:
			if err != nil {
				return 0, 0, 0, err
			}
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		}
	}
	return estab, time.Since(start), d.cpuTime() - cpu0, nil
}

// dialFleetClient connects one client, retrying while the daemon's listen
// queue overflows.
func dialFleetClient(ctx context.Context, local string, port int, id uint32) (*speaker, error) {
	var err error
	for range 5 {
		var s *speaker
		if s, err = dialSpeakerBuf(ctx, local, port, id, fleetReadBuf); err == nil {
			return s, nil
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		}
	}
	return nil, err
}
