package buildid

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSourceIn(t *testing.T) {
	const d, d2 = "0123456789abcdef", "fedcba9876543210"
	for ldflags, want := range map[string]string{
		"":                   "",
		"-X main.version=v1": "",
		"-X main.version=v1 -X " + SourceSymbol + "=" + SourceMarker + d:                                 d,
		"-X=" + SourceSymbol + "=" + SourceMarker + d + " -s -w":                                         d,
		"--X " + SourceSymbol + "=" + SourceMarker + d + " -X " + SourceSymbol + "=" + SourceMarker + d2: d2,
		"-X '" + SourceSymbol + "=" + SourceMarker + d + "'":                                             d,
		"-X " + SourceSymbol + "=" + d:                                                                   "", // no marker
		"-X " + SourceSymbol + "=" + SourceMarker + "xyz":                                                "", // no digest
	} {
		if got := sourceIn(ldflags); got != want {
			t.Errorf("sourceIn(%q) = %q, want %q", ldflags, got, want)
		}
	}
}

// TestScanSource: the digest is found after its marker wherever it lies
// in the file, across the reader's chunks, past a marker without one.
func TestScanSource(t *testing.T) {
	const d = "0123456789abcdef"
	for _, at := range []int{0, 1000, 256<<10 - 10, 256<<10 - len(SourceMarker) - 3, 256 << 10, 3 << 20} {
		b := make([]byte, at+(1<<20))
		copy(b[at/2:], SourceMarker+"not a digest")
		copy(b[at:], SourceMarker+d)
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := scanSource(path); err != nil || got != d {
			t.Errorf("marker at %d: %q, %v; want %s", at, got, err, d)
		}
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("nothing here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := scanSource(path); err != nil || got != "" {
		t.Errorf("without a marker: %q, %v", got, err)
	}
}
