// Package testlog is a log sink for tests: what a logger writes from
// several goroutines, read back as text.
package testlog

import (
	"strings"
	"sync"
)

// Buffer collects writes; safe for concurrent use. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
