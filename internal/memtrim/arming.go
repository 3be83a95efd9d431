package memtrim

import (
	"context"
	"time"
)

// WatchArming runs a WhenQuiet whose timer is never due and reports on
// the channel it returns each time a change arms it, until ctx ends; for
// the tests of the callers of Changed. It clears the pending change
// first, so that only the changes made after it count.
func WatchArming(ctx context.Context) <-chan struct{} {
	clearChanged()
	armed := make(chan struct{}, 16)
	go WhenQuiet(ctx, QuietConfig{
		Settle: time.Hour, MinGap: time.Hour, Trim: func() {},
		After: func(time.Duration) (<-chan time.Time, func()) {
			select {
			case armed <- struct{}{}:
			default:
			}
			return nil, func() {}
		},
	})
	return armed
}
