package sim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/bgpfabric/bgpfabric/sim/netbuild"
	"github.com/bgpfabric/bgpfabric/sim/runstate"
)

// proc is a process this sim started, with its exit as an event.
type proc struct {
	rec runstate.Proc
	cmd *exec.Cmd
	// exited is closed when the process has exited and been reaped.
	exited chan struct{}
	err    error
}

// startIn starts args as a process inside namespace ns, in a session of
// its own (so a Ctrl-C of the sim's terminal does not reach it and a stop
// reaches its children), with output to logFile. The process is forked from
// an OS thread inside ns, so it begins life there: no helper, no nsenter.
// It is recorded in run before startIn returns.
//
// nice > 0 starts it at that nice value (every thread of it: the child
// inherits the nice of the thread that forks it, which is set for the fork
// and put back after).
func startIn(run *runstate.Run, name string, ns netns.NsHandle, nsName string, args []string, logFile string, env []string, nice int) (*proc, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("%s: empty command", name)
	}
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = run.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: 0}
	start := cmd.Start
	if nice > 0 {
		start = func() error { return startNiced(cmd, nice) }
	}
	if err := netbuild.Do(ns, start); err != nil {
		return nil, fmt.Errorf("starting %s (%s) in %s: %w", name, strings.Join(args, " "), nsName, err)
	}
	rec, err := runstate.Describe(name, cmd.Process.Pid)
	if err != nil {
		// It exited already; record what we know so the log is found.
		rec = runstate.Proc{Name: name, PID: cmd.Process.Pid}
	}
	rec.Netns, rec.Args, rec.Log = nsName, args, logFile
	p := &proc{rec: rec, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	if err := run.AddProc(rec); err != nil {
		return p, fmt.Errorf("recording %s: %w", name, err)
	}
	return p, nil
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// procTable holds the processes of a fabric by name.
type procTable struct {
	mu sync.Mutex
	m  map[string]*proc
}

func (t *procTable) get(name string) *proc {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[name]
}

func (t *procTable) set(name string, p *proc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*proc{}
	}
	t.m[name] = p
}

func (t *procTable) all() []*proc {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*proc, 0, len(t.m))
	for _, p := range t.m {
		out = append(out, p)
	}
	return out
}

// startNiced starts cmd from the calling thread (locked by netbuild.Do) at
// nice value nice, then puts the thread's own value back. If that fails,
// the thread is locked once more, so that the runtime discards it instead
// of running other goroutines at the lower priority.
func startNiced(cmd *exec.Cmd, nice int) error {
	// getpriority(2) returns 20 - nice on Linux.
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		return fmt.Errorf("reading the thread's nice value: %w", err)
	}
	prev := 20 - raw
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, nice); err != nil {
		return fmt.Errorf("setting nice %d: %w", nice, err)
	}
	startErr := cmd.Start()
	if err := syscall.Setpriority(syscall.PRIO_PROCESS, 0, prev); err != nil {
		runtime.LockOSThread()
	}
	return startErr
}
