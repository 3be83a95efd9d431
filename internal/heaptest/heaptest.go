// Package heaptest measures the live Go heap for the memory benchmarks
// (heap bytes per path, per node of a fabric): the heap in use after full
// collections, its growth over a step, and a heap profile on request.
package heaptest

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
)

// Live is the heap in use by live objects after two full collections (the
// second frees what finalizers let go of in the first).
func Live() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// Growth is after - before, or 0 when the heap shrank.
func Growth(before, after int64) uint64 {
	if after < before {
		return 0
	}
	return uint64(after - before)
}

// WriteProfile writes the heap profile to path; an empty path writes
// nothing.
func WriteProfile(tb testing.TB, path string) {
	tb.Helper()
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}
