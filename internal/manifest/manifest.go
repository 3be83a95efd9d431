// Package manifest reads the documents that `bgpfabric apply` and the
// simulator's topology files carry: multi-document YAML or JSON, each
// document one resource of the api package.
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/bgpfabric/bgpfabric/api"
)

// Document is one resource read from a file, with where it came from.
type Document struct {
	Resource api.Resource
	Source   Source
}

// Source locates a document: its file, its 1-based index in the file and the
// 1-based line on which it starts.
type Source struct {
	File  string
	Index int
	Line  int
}

func (s Source) String() string {
	return fmt.Sprintf("%s: document %d (line %d)", s.File, s.Index, s.Line)
}

// Error is a problem with one document.
type Error struct {
	Source Source
	Err    error
}

func (e *Error) Error() string { return e.Source.String() + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Parse reads every document of data, which is YAML (documents separated by
// "---" lines) or JSON (one object, or an array of objects). Each document
// is decoded strictly, defaulted and validated. Parse returns every document
// or, if any document is wrong, an error for each wrong one and no
// documents: a caller can never act on half a file.
func Parse(file string, data []byte) ([]Document, error) {
	raw, err := split(file, data)
	if err != nil {
		return nil, err
	}
	var docs []Document
	var errs []error
	for _, r := range raw {
		res, err := decode(r.json)
		var dup *api.DuplicateFieldError
		if errors.As(err, &dup) { // of a JSON document: lines from the file's start
			err = &api.DuplicateFieldError{Path: dup.Path, Line: dup.Line + r.src.Line - 1, FirstLine: dup.FirstLine + r.src.Line - 1}
		}
		if err != nil {
			errs = append(errs, &Error{Source: r.src, Err: err})
			continue
		}
		if ki, err := api.LookupKind(res.GetTypeMeta().Kind); err == nil && ki.Status {
			errs = append(errs, &Error{Source: r.src, Err: fmt.Errorf("%s is a status record written by the agents, not a document to apply", ki.Kind)})
			continue
		}
		res.Default()
		if err := res.Validate(); err != nil {
			errs = append(errs, &Error{Source: r.src, Err: err})
			continue
		}
		docs = append(docs, Document{Resource: res, Source: r.src})
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no documents found", file)
	}
	return docs, nil
}

// joinErrors joins errors one per line.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &multiError{errs: errs, msg: strings.Join(msgs, "\n")}
}

type multiError struct {
	errs []error
	msg  string
}

func (m *multiError) Error() string   { return m.msg }
func (m *multiError) Unwrap() []error { return m.errs }

type rawDoc struct {
	src  Source
	json []byte
}

// split cuts data into documents and converts each to JSON.
func split(file string, data []byte) ([]rawDoc, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		return splitJSONArray(file, data)
	}
	var out []rawDoc
	var cur bytes.Buffer
	start, line, index := 1, 0, 0
	flush := func() error {
		body := cur.Bytes()
		cur.Reset()
		if isBlank(body) {
			return nil
		}
		index++
		src := Source{File: file, Index: index, Line: start}
		if len(body) > api.MaxDocumentSize {
			return &Error{Source: src, Err: fmt.Errorf("document is %d bytes: at most %d (1.5 MiB, etcd's request limit) are allowed", len(body), api.MaxDocumentSize)}
		}
		if err := checkYAMLKeys(body, start); err != nil {
			return &Error{Source: src, Err: err}
		}
		j, err := yaml.YAMLToJSON(body)
		if err != nil {
			return &Error{Source: src, Err: fmt.Errorf("invalid YAML: %w", shiftLine(err, start))}
		}
		if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
			return nil
		}
		if len(j) == 0 || j[0] != '{' {
			return &Error{Source: src, Err: fmt.Errorf("a document must be a mapping with apiVersion, kind, metadata and spec")}
		}
		out = append(out, rawDoc{src: src, json: j})
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.HasPrefix(text, "---") && strings.TrimSpace(strings.TrimPrefix(text, "---")) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			start = line + 1
			continue
		}
		cur.WriteString(text)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// splitJSONArray cuts a JSON array into its documents, each with the
// line it starts on.
func splitJSONArray(file string, data []byte) ([]rawDoc, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // [
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []rawDoc
	for dec.More() {
		var it json.RawMessage
		if err := dec.Decode(&it); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		// The item ends at InputOffset; it starts len(it) before.
		start := int(dec.InputOffset()) - len(it)
		line := 1 + bytes.Count(data[:max(start, 0)], []byte("\n"))
		out = append(out, rawDoc{src: Source{File: file, Index: len(out) + 1, Line: line}, json: it})
	}
	if _, err := dec.Token(); err != nil { // ]
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: text after the JSON array", file)
	}
	return out, nil
}

func isBlank(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

// decode turns one JSON document into a resource, with the api package's
// strict decoding (unknown fields are errors).
func decode(j []byte) (api.Resource, error) {
	return api.Decode(j)
}
