package runstate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Self describes this process.
func Self() (Proc, error) {
	return Describe("sim", os.Getpid())
}

// Describe reads a process's start time, so that it can later be told
// apart from a process that reuses its PID.
func Describe(name string, pid int) (Proc, error) {
	st, err := startTime(pid)
	if err != nil {
		return Proc{}, err
	}
	return Proc{Name: name, PID: pid, Start: st}, nil
}

// startTime is field 22 of /proc/PID/stat: when the process started, in
// clock ticks after boot.
func startTime(pid int) (uint64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may contain spaces:
	// count fields after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := bytes.Fields(data[i+1:])
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return strconv.ParseUint(string(fields[19]), 10, 64)
}

// Alive reports whether the process still runs (and is the same process,
// not a reuse of its PID). A zombie counts as dead.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	st, err := startTime(p.PID)
	if err != nil || st != p.Start {
		return false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.PID) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(data, ')')
	return i < 0 || i+2 >= len(data) || data[i+2] != 'Z'
}

// Stop ends the process: SIGTERM to the process (and its process group if
// it leads one), then SIGKILL after grace. It signals through a pidfd opened
// after checking the start time, so a reused PID is never signalled, and
// waits for the exit on the pidfd (an event, not polling). A process that
// is already gone is not an error.
func (p Proc) Stop(grace time.Duration) error {
	return p.stop(grace, false)
}

// Pause stops (SIGSTOP) or continues (SIGCONT) the process and its
// process group: an agent and its speaker child, frozen as a hung agent
// would be.
func (p Proc) Pause(stop bool) error {
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", p.PID, err)
	}
	defer unix.Close(fd)
	if st, err := startTime(p.PID); err != nil || st != p.Start {
		return fmt.Errorf("process %s (pid %d) is gone", p.Name, p.PID)
	}
	sig := unix.SIGCONT
	if stop {
		sig = unix.SIGSTOP
	}
	if pg, err := unix.Getpgid(p.PID); err == nil && pg == p.PID {
		if err := unix.Kill(-p.PID, sig); err != nil {
			return fmt.Errorf("%s to process group %d (%s): %w", sig, p.PID, p.Name, err)
		}
		return nil
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("%s to %d (%s): %w", sig, p.PID, p.Name, err)
	}
	return nil
}

// Kill ends the process as a crash would: SIGKILL at once (no SIGTERM that
// would let it say goodbye to its BGP peers), to it and its process group.
func (p Proc) Kill() error {
	return p.stop(0, true)
}

func (p Proc) stop(grace time.Duration, hard bool) error {
	if p.PID <= 0 {
		return nil
	}
	fd, err := unix.PidfdOpen(p.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", p.PID, err)
	}
	defer unix.Close(fd)
	// The pidfd now pins the process: if it is the one we recorded, every
	// signal below reaches it and nothing else.
	if st, err := startTime(p.PID); err != nil || st != p.Start {
		return nil
	}
	signal := func(sig syscall.Signal) {
		if pg, err := unix.Getpgid(p.PID); err == nil && pg == p.PID {
			// Its children (e.g. a router's helper daemons) too.
			_ = unix.Kill(-p.PID, sig)
		}
		_ = unix.PidfdSendSignal(fd, sig, nil, 0)
	}
	if !hard {
		signal(unix.SIGTERM)
		// A paused process (the pause-agent fault) handles its SIGTERM
		// only once it runs again.
		signal(unix.SIGCONT)
		if waitExit(fd, grace) {
			return nil
		}
	}
	signal(unix.SIGKILL)
	// A killed process exits once the kernel has torn it down, which takes
	// seconds when hundreds of agents in namespaces exit at once.
	if waitExit(fd, 30*time.Second) {
		return nil
	}
	return fmt.Errorf("process %s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
}

// waitExit waits until the pidfd becomes readable, which it does when the
// process exits.
func waitExit(fd int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		ms := int(time.Until(deadline).Milliseconds())
		if ms < 0 {
			return false
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err == nil && n > 0 {
			return true
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return false
		}
		if err == nil && n == 0 {
			return false
		}
	}
}
