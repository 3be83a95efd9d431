package speakerproc

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bgpfabric/bgpfabric/router"
)

// envTestParent makes this test binary a node-like parent: it starts a
// speaker child, prints the child's PID and waits to be killed.
const envTestParent = "BF_SPEAKERPROC_TEST_PARENT"

// envTestSpeakerDir makes the test parent run the speaker binary in
// that directory (Command), not itself.
const envTestSpeakerDir = "BF_SPEAKERPROC_TEST_SPEAKER_DIR"

func runTestParent() int {
	cmd := SelfCommand("-test.run=^$")
	if dir := os.Getenv(envTestSpeakerDir); dir != "" {
		cmd = commandIn(dir, func() *exec.Cmd { return exec.Command(fallbackMarker) }, slog.New(slog.DiscardHandler))
	}
	c := New(Config{Command: cmd})
	ctx := context.Background()
	if err := c.Start(ctx, router.Global{AS: 64512, RouterID: speakerAddr, ListenPort: -1}); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("child", c.PID())
	select {} // until killed
}

// TestChildDiesWithParent: when the node's process is killed (SIGKILL,
// no chance to stop anything), its speaker child dies too: it never
// outlives the node.
// The speaker runs from the node's binary or from its own
// (BinaryName, Command): both die with the node.
func TestChildDiesWithParent(t *testing.T) {
	t.Run("node binary", func(t *testing.T) { testChildDiesWithParent(t, "") })
	t.Run("speaker binary", func(t *testing.T) { testChildDiesWithParent(t, speakerDir(t)) })
}

func testChildDiesWithParent(t *testing.T, speakerDir string) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	parent := exec.Command(exe, "-test.run=^$")
	parent.Env = append(os.Environ(), envTestParent+"=1", envTestSpeakerDir+"="+speakerDir)
	out, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	parent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = parent.Process.Kill(); _ = parent.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the parent's report: %v", err)
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != "child" {
		t.Fatalf("parent: %q", line)
	}
	pid, err := strconv.Atoi(f[1])
	if err != nil || pid <= 0 {
		t.Fatalf("parent reported child %q", f[1])
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatalf("child %d: %v", pid, err)
	}
	defer unix.Close(fd)
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	// A pidfd becomes readable when its process exits.
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := unix.Poll(pfd, int(time.Until(deadline).Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
			t.Fatalf("the speaker child %d outlived its killed parent", pid)
		}
		return
	}
}

// envTestHang makes the child's Peers hang (hangingPeers).
const envTestHang = "BF_SPEAKERPROC_TEST_HANG"

// hangingPeers is a speaker whose Peers never returns: a hung speaker.
type hangingPeers struct{ router.Speaker }

func (hangingPeers) Peers(context.Context) ([]router.PeerStatus, error) { select {} }

// TestHungChildIsKilled: a child that does not answer a call within
// CallTimeout is killed and reported lost, so that the router restarts
// it, and the call fails instead of blocking its caller for ever.
func TestHungChildIsKilled(t *testing.T) {
	t.Setenv(envTestHang, "1") // inherited by the child
	c := New(Config{Command: SelfCommand("-test.run=^$"), CallTimeout: time.Second})
	losses := make(chan router.SpeakerLoss, 1)
	if err := c.WatchLoss(t.Context(), func(l router.SpeakerLoss) { losses <- l }); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(t.Context(), router.Global{AS: 64512, RouterID: speakerAddr, ListenPort: -1}); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	if _, err := c.Peers(t.Context()); err == nil || !strings.Contains(err.Error(), "no reply") {
		t.Errorf("Peers on a hung child: %v, want an error naming the missing reply", err)
	}
	select {
	case l := <-losses:
		if !strings.Contains(l.Err.Error(), "no reply to Peers") {
			t.Errorf("loss %v, want the hang named", l.Err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no loss reported for the hung child")
	}
	if pid := c.PID(); pid != 0 {
		t.Errorf("child %d still counted as running", pid)
	}
}
