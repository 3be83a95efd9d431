package speakerproc

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/internal/buildid"
	"github.com/bgpfabric/bgpfabric/internal/buildid/buildidtest"
)

// TestSpeakerOfOtherSourcesRefused: a bgpfabric-speaker beside the node
// that was built from other sources (a stale build) is refused before it
// is run, with an error naming both binaries and both identities:
// bgpfabric-node (Find) stops with it, bgpfabric node (Command) runs its
// own speaker and logs why. buildid.EnvMixed lets it through (then the
// protocol query judges it). A speaker of the same build passes
// (TestFindWithoutFallback, TestCommandRunsTheSpeakerBinary: a copy of
// this binary).
func TestSpeakerOfOtherSourcesRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, BinaryName)
	buildidtest.Build(t, path, "00000000000000dd")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(buildid.EnvMixed, "")

	_, err = findIn(dir, slog.New(slog.DiscardHandler))
	var mm *buildid.MismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("findIn with a speaker of other sources: %v, want a MismatchError", err)
	}
	for _, s := range []string{path, self, "00000000000000dd", buildid.Self().String()} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}

	lg, logs := bufLogger()
	if got := commandIn(dir, markedFallback, lg)().Path; got != fallbackMarker {
		t.Errorf("command %q, want the fallback", got)
	}
	if !strings.Contains(logs.String(), "00000000000000dd") {
		t.Errorf("log does not say why:\n%s", logs)
	}

	t.Setenv(buildid.EnvMixed, "1")
	if _, err := findIn(dir, slog.New(slog.DiscardHandler)); errors.As(err, &mm) || err == nil || !strings.Contains(err.Error(), "speaks protocol") {
		t.Errorf("findIn with %s=1: %v, want the protocol query to judge it", buildid.EnvMixed, err)
	}
}
