// Package memtrim gives back the memory that a long-lived process
// touched only while it started: the Go heap's free pages, and the pages
// of its own executable that package initialisation and start-up faulted
// in.
//
// Why the executable: bgpfabric is one binary that links the embedded
// etcd server, gRPC, GoBGP, the simulator and the CLI, and every linked
// package's init runs in every process, whatever it is started as. A
// node agent maps about 28 MiB of the binary once it has started and
// converged, and uses about 17 of them at rest (docs/scale.md). Those pages are clean, file-backed and shared (the kernel keeps
// one copy in its page cache for every process that maps the binary), but
// each process's RSS counts every page it maps. Trim drops the
// executable's read-only mappings (code, read-only data, the function
// tables) from the process's page tables with MADV_DONTNEED; the page
// cache keeps the pages, and whatever the process touches again is mapped
// again on its next access, from the same file (a replaced binary keeps
// its inode while it runs). The writable data segment is never touched:
// its pages hold the program's own state.
//
// What this saves in the machine's memory is less than what it takes off
// RSS: clean page-cache pages are reclaimable either way; unmapped ones
// are reclaimed first, mapped ones only after the kernel has unmapped
// them. See docs/scale.md for the measurements.
//
// A process's start is not the only burst whose memory outlives it: at
// 300 nodes the fabric goes on converging (routes, endpoints) for a
// minute or more after the node agent's first trim, and what that work
// faulted in (the binary's code and tables of the route and endpoint
// paths; heap pages freed since, which the runtime gives back only
// gradually) stays mapped. So the process trims again once it has been
// quiet for a while after its last burst of changes: Changed marks a
// change (a datastore change delivered, a kernel route added, replaced or
// deleted), and WhenQuiet trims after a settle period without one, at
// most once per minimum gap, and only if something changed since the
// last trim, so that an idle process never trims again and a busy one is
// not trimmed in a loop.
package memtrim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LogKeyBinaryKiB is the log key under which callers report
// Result.BinaryKiB.
const LogKeyBinaryKiB = "binary_kib"

// Result says what Trim dropped.
type Result struct {
	// BinaryKiB is how much of the executable's read-only mappings was
	// resident (mapped) when Trim dropped them.
	BinaryKiB int64
}

// Trim returns the Go heap's free pages to the kernel
// (debug.FreeOSMemory, after a garbage collection) and drops the
// executable's read-only mappings from this process's page tables. The
// changes marked (Changed) before it are dealt with: WhenQuiet does not
// trim again for them.
func Trim() (Result, error) {
	clearChanged()
	debug.FreeOSMemory()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return Result{}, fmt.Errorf("memtrim: finding the executable: %w", err)
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return Result{}, fmt.Errorf("memtrim: reading the mappings: %w", err)
	}
	maps := binaryMappings(smaps, exe)
	var res Result
	for _, m := range maps {
		res.BinaryKiB += m.rssKiB
		// The range is not Go memory: madvise takes it as numbers.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); errno != 0 {
			return res, fmt.Errorf("memtrim: dropping %x-%x of %s: %w", m.start, m.end, exe, errno)
		}
	}
	return res, nil
}

// mapping is one read-only mapping of the executable.
type mapping struct {
	start, end uintptr
	rssKiB     int64
}

// binaryMappings returns the mappings of exe in smaps (the text of
// /proc/PID/smaps) that are not writable. A mapping's header line is
// "start-end perms offset dev inode path", its fields follow as "Key:
// value kB" lines.
func binaryMappings(smaps []byte, exe string) []mapping {
	var out []mapping
	cur := -1
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 {
			cur = -1
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil || b <= a || len(f) != 6 || f[5] != exe || strings.Contains(f[1], "w") {
				continue
			}
			out = append(out, mapping{start: uintptr(a), end: uintptr(b)})
			cur = len(out) - 1
			continue
		}
		if cur >= 0 && f[0] == "Rss:" && len(f) >= 2 {
			out[cur].rssKiB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return out
}

// AfterReady trims once: when ready (polled every poll, as readiness is
// a check, not an event) has returned nil, and settle has passed since,
// so that start-up and convergence are done. It returns what Trim
// returned, or ctx's error if ctx ends first. It never trims twice: the
// pages the process uses at rest stay mapped.
func AfterReady(ctx context.Context, ready func() error, poll, settle time.Duration) (Result, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for ready() != nil {
		select {
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-t.C:
		}
	}
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-time.After(settle):
	}
	return Trim()
}
