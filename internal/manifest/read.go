package manifest

import (
	"fmt"
	"io"
	"os"
)

// MaxFileSize bounds a manifest file (or stdin): far more than a fabric's
// resources (each document has at most api.MaxDocumentSize), and far less
// than a machine's memory.
const MaxFileSize = 64 << 20

// ReadFile reads a manifest file, "-" being r (stdin), refusing one larger
// than MaxFileSize without reading more than that. name is how errors and
// Parse call it.
func ReadFile(path string, stdin io.Reader) (data []byte, name string, err error) {
	name = path
	r := stdin
	if path == "-" {
		name = "<stdin>"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, name, fmt.Errorf("reading %s: %w", name, err)
		}
		defer f.Close()
		r = f
	}
	data, err = io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, name, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, name, fmt.Errorf("reading %s: larger than %d bytes (64 MiB)", name, MaxFileSize)
	}
	return data, name, nil
}
