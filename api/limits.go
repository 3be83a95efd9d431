package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Size limits of documents, as Kubernetes and etcd have them.
const (
	// MaxDocumentSize bounds one resource document (its JSON): etcd's
	// default request limit (--max-request-bytes, 1.5 MiB), which no
	// stored resource can exceed anyway.
	MaxDocumentSize = 3 << 19 // 1.5 MiB
	// MaxAnnotationsSize bounds the annotations of a resource: the total
	// length of their keys and values, Kubernetes' limit (256 KiB).
	MaxAnnotationsSize = 256 << 10
	// maxNesting bounds how deep a document's objects and arrays may nest;
	// no kind needs a tenth of it.
	maxNesting = 64
)

// DuplicateFieldError is a field that appears twice in one object of a
// document. Decoders (encoding/json, YAML) keep the last value without a
// word, so a document that sets `cidr` twice would silently mean its
// second value: it is refused instead.
type DuplicateFieldError struct {
	// Path is the field's path, e.g. "spec.cidr".
	Path string
	// Line and FirstLine are the 1-based lines of the two occurrences,
	// counted from the start of the text the decoder was given.
	Line, FirstLine int
}

func (e *DuplicateFieldError) Error() string {
	return fmt.Sprintf("line %d: %s: duplicate field (first set on line %d): a field may appear only once", e.Line, e.Path, e.FirstLine)
}

// checkDocument checks what the decoders do not: the document's size, its
// nesting and that no object has a field twice.
func checkDocument(data []byte) error {
	if len(data) > MaxDocumentSize {
		return fmt.Errorf("document is %d bytes: at most %d (1.5 MiB, etcd's request limit) are allowed", len(data), MaxDocumentSize)
	}
	d := &dupChecker{dec: json.NewDecoder(bytes.NewReader(data)), data: data, line: 1}
	d.dec.UseNumber()
	err := d.value("", 0)
	if errors.Is(err, errNotJSON) {
		return nil // the decoder reports it
	}
	return err
}

var errNotJSON = errors.New("not JSON")

// dupChecker walks a JSON document token by token, keeping the line of
// the decoder's position.
type dupChecker struct {
	dec  *json.Decoder
	data []byte
	off  int // data[:off] has been counted into line
	line int
}

func (d *dupChecker) lineAt(off int64) int {
	for ; d.off < int(off) && d.off < len(d.data); d.off++ {
		if d.data[d.off] == '\n' {
			d.line++
		}
	}
	return d.line
}

func (d *dupChecker) value(path string, depth int) error {
	tok, err := d.dec.Token()
	if err != nil {
		return errNotJSON
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	if depth >= maxNesting {
		return fmt.Errorf("line %d: %s: objects and arrays nest deeper than %d levels", d.lineAt(d.dec.InputOffset()), orRoot(path), maxNesting)
	}
	switch delim {
	case '{':
		seen := map[string]int{}
		for d.dec.More() {
			kt, err := d.dec.Token()
			if err != nil {
				return errNotJSON
			}
			k, ok := kt.(string)
			if !ok {
				return errNotJSON
			}
			line := d.lineAt(d.dec.InputOffset())
			p := join(path, k)
			if first, dup := seen[k]; dup {
				return &DuplicateFieldError{Path: p, Line: line, FirstLine: first}
			}
			seen[k] = line
			if err := d.value(p, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for i := 0; d.dec.More(); i++ {
			if err := d.value(fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
	}
	if _, err := d.dec.Token(); err != nil { // the closing delimiter
		return errNotJSON
	}
	return nil
}

func orRoot(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

// annotationsSize is what Kubernetes counts against MaxAnnotationsSize.
func annotationsSize(a map[string]string) int {
	n := 0
	for k, v := range a {
		n += len(k) + len(v)
	}
	return n
}
