package speakerproc

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/router"
)

// envTestProtocol makes this test binary answer a protocol query with
// its value: a speaker binary built from other sources.
const envTestProtocol = "BF_SPEAKERPROC_TEST_PROTOCOL"

// fallbackMarker is the path of the fallback command in these tests.
const fallbackMarker = "/nonexistent/fallback-speaker"

func markedFallback() *exec.Cmd { return exec.Command(fallbackMarker) }

// speakerDir returns a directory holding a copy of this test binary as
// BinaryName (it runs as a speaker child through MaybeChild, as the real
// one does through Main).
func speakerDir(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dir := t.TempDir()
	dst, err := os.OpenFile(filepath.Join(dir, BinaryName), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func bufLogger() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// TestCommandRunsTheSpeakerBinary: with a speaker binary of this
// protocol beside the node, the node's speaker child runs it (its
// /proc/PID/exe), and it serves the node.
func TestCommandRunsTheSpeakerBinary(t *testing.T) {
	dir := speakerDir(t)
	lg, logs := bufLogger()
	cmd := commandIn(dir, markedFallback, lg)
	if got := cmd().Args[0]; got != filepath.Join(dir, BinaryName) {
		t.Fatalf("command runs %q, want the speaker binary %s; log:\n%s", got, filepath.Join(dir, BinaryName), logs)
	}
	c := New(Config{Command: cmd})
	if err := c.Start(t.Context(), router.Global{AS: 64512, RouterID: speakerAddr, ListenPort: -1}); err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	exe, err := os.Readlink("/proc/" + strconv.Itoa(c.PID()) + "/exe")
	if err != nil {
		t.Fatal(err)
	}
	if exe != filepath.Join(dir, BinaryName) {
		t.Errorf("the child runs %s, want %s", exe, filepath.Join(dir, BinaryName))
	}
	if _, err := c.Peers(t.Context()); err != nil {
		t.Errorf("Peers through the speaker binary: %v", err)
	}
}

// TestCommandFallsBack: without a usable speaker binary of this protocol
// beside it, the node runs its own binary as the speaker, and says why.
func TestCommandFallsBack(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		lg, logs := bufLogger()
		if got := commandIn(t.TempDir(), markedFallback, lg)().Path; got != fallbackMarker {
			t.Errorf("command %q, want the fallback", got)
		}
		if !strings.Contains(logs.String(), "no "+BinaryName) {
			t.Errorf("log does not say why:\n%s", logs)
		}
	})
	t.Run("other protocol", func(t *testing.T) {
		dir := speakerDir(t)
		t.Setenv(envTestProtocol, "0123456789abcdef") // the query's child inherits it
		lg, logs := bufLogger()
		if got := commandIn(dir, markedFallback, lg)().Path; got != fallbackMarker {
			t.Errorf("command %q, want the fallback", got)
		}
		if !strings.Contains(logs.String(), "0123456789abcdef") {
			t.Errorf("log does not name the other protocol:\n%s", logs)
		}
	})
	t.Run("not executable", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, BinaryName), []byte("not a program"), 0o644); err != nil {
			t.Fatal(err)
		}
		lg, logs := bufLogger()
		if got := commandIn(dir, markedFallback, lg)().Path; got != fallbackMarker {
			t.Errorf("command %q, want the fallback", got)
		}
		if !strings.Contains(logs.String(), "asking it for its protocol") {
			t.Errorf("log does not say why:\n%s", logs)
		}
	})
}

// TestFindWithoutFallback: Find (bgpfabric-node's, which has no speaker
// of its own) gives the speaker binary when it is usable, and otherwise
// an error that names the binary and says why, instead of a fallback.
func TestFindWithoutFallback(t *testing.T) {
	dir := speakerDir(t)
	run, err := findIn(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("findIn with a speaker binary: %v", err)
	}
	if got := run().Args[0]; got != filepath.Join(dir, BinaryName) {
		t.Errorf("command %q, want %s", got, filepath.Join(dir, BinaryName))
	}
	empty := t.TempDir()
	if _, err := findIn(empty, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), filepath.Join(empty, BinaryName)) {
		t.Errorf("findIn without a speaker binary: %v, want an error naming %s", err, filepath.Join(empty, BinaryName))
	}
	t.Setenv(envTestProtocol, "0123456789abcdef")
	if _, err := findIn(dir, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "0123456789abcdef") {
		t.Errorf("findIn with a speaker of another protocol: %v, want an error naming its protocol", err)
	}
}

// TestCommandKeepsTheBinaryItFound: a speaker binary replaced on disk
// after the node found it (an upgrade in progress) does not change the
// node's speaker: children run from the file the node opened.
func TestCommandKeepsTheBinaryItFound(t *testing.T) {
	dir := speakerDir(t)
	cmd := commandIn(dir, markedFallback, slog.New(slog.DiscardHandler))
	path := filepath.Join(dir, BinaryName)
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := New(Config{Command: cmd})
	if err := c.Start(t.Context(), router.Global{AS: 64512, RouterID: speakerAddr, ListenPort: -1}); err != nil {
		t.Fatalf("starting the speaker after its binary was replaced: %v", err)
	}
	defer c.Stop(context.Background())
	if _, err := c.Peers(t.Context()); err != nil {
		t.Errorf("Peers: %v", err)
	}
}
