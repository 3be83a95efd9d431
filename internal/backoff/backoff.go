// Package backoff computes the pauses between retries of a failing
// operation: exponential between a floor and a ceiling, with full jitter
// in the upper half (each pause is uniform in [d/2, d]), so that agents
// that failed together do not retry together.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the state of one retry loop; the zero value is not usable:
// use New. It is not safe for concurrent use (a retry loop is one
// goroutine).
type Backoff struct {
	min, max time.Duration
	cur      time.Duration
	// rand returns a float in [0, 1); tests replace it.
	rand func() float64
}

// New returns a Backoff whose first pause is about min and whose pauses
// grow twofold up to max.
func New(min, max time.Duration) *Backoff {
	if min <= 0 {
		min = time.Millisecond
	}
	max = maxDur(max, min)
	return &Backoff{min: min, max: max, rand: rand.Float64}
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// Next returns the pause before the next attempt and doubles the
// following one (up to max).
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	return Jitter(d, 0.5, b.rand)
}

// Reset makes the next pause the shortest again (after a success).
func (b *Backoff) Reset() { b.cur = 0 }

// Wait pauses for Next() or until ctx ends; it reports whether the pause
// ran out (false: ctx ended).
func (b *Backoff) Wait(ctx context.Context) bool {
	return Sleep(ctx, b.Next())
}

// Sleep pauses for d or until ctx ends; it reports whether d ran out.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Jitter returns d shortened by a random part of up to frac of it
// (d*(1-frac) ≤ result ≤ d); r is a source of floats in [0, 1), nil for
// math/rand.
func Jitter(d time.Duration, frac float64, r func() float64) time.Duration {
	if r == nil {
		r = rand.Float64
	}
	frac = min(max(frac, 0), 1)
	return d - time.Duration(frac*r()*float64(d))
}
