package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, parses and validates a topology file.
func Load(file string) (*Topology, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return Parse(file, data)
}

// Parse reads a topology from data (YAML, one document), checks that every
// field is known and of the right type, and validates it, including a trial
// expansion, so that a topology that parses also expands. The error is an
// ErrorList naming the file, line and field of each problem.
func Parse(file string, data []byte) (*Topology, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrorList{{File: file, Msg: "empty topology file"}}
		}
		return nil, ErrorList{yamlError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, ErrorList{{File: file, Line: extra.Line, Msg: "a topology file holds one YAML document; put resources under \"resources:\""}}
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, ErrorList{{File: file, Line: doc.Line, Column: doc.Column, Msg: "a topology must be a mapping (name:, bgp:, nodes:, ...)"}}
	}
	t := &Topology{file: file, root: doc}
	var errs ErrorList
	checkFields(file, doc, reflect.TypeOf(t).Elem(), nil, &errs)
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	if err := doc.Decode(t); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, ErrorList{yamlError(file, err)}
		}
		for _, msg := range te.Errors {
			errs = append(errs, t.typeError(msg))
		}
		return nil, errs.sorted()
	}
	if err := t.validate(); err != nil {
		return nil, err
	}
	if _, err := Expand(t, ExpandOptions{}); err != nil {
		return nil, err
	}
	return t, nil
}

// File is the name the topology was parsed from.
func (t *Topology) File() string { return t.file }

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlError(file string, err error) *Error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: n, Msg: m[2]}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

var typeErrRE = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) `(.*)` into (.*)$")

// typeError turns one of yaml's "line N: cannot unmarshal" messages into an
// Error naming the field on that line.
func (t *Topology) typeError(msg string) *Error {
	m := typeErrRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: t.file, Msg: msg}
	}
	line, _ := strconv.Atoi(m[1])
	e := &Error{File: t.file, Line: line, Msg: fmt.Sprintf("want %s, got %s %q", goTypeWord(m[4]), m[2], m[3])}
	if p, n := findLine(t.root, nil, line); n != nil {
		e.Field, e.Column = p.String(), n.Column
	}
	return e
}

func goTypeWord(t string) string {
	switch {
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"):
		return "a whole number"
	case t == "bool":
		return "true or false"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case strings.HasPrefix(t, "map["), strings.Contains(t, "."):
		return "a mapping"
	}
	return t
}

// findLine returns the path and node of the first value node on line.
func findLine(n *yaml.Node, p path, line int) (path, *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if q, m := findLine(n.Content[i+1], p.key(n.Content[i].Value), line); m != nil {
				return q, m
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if q, m := findLine(c, p.idx(i), line); m != nil {
				return q, m
			}
		}
	}
	if n.Line == line {
		return p, n
	}
	return nil, nil
}

// locate finds the node at p (or the deepest existing ancestor) and returns
// its line and column.
func locate(n *yaml.Node, p path) (line, col int) {
	if n == nil {
		return 0, 0
	}
	for _, e := range p {
		if n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		var next *yaml.Node
		switch e := e.(type) {
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == e {
						next = n.Content[i+1]
						break
					}
				}
			}
		case int:
			if n.Kind == yaml.SequenceNode && e >= 0 && e < len(n.Content) {
				next = n.Content[e]
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return n.Line, n.Column
}

var nodeType = reflect.TypeOf(yaml.Node{})

// checkFields reports every mapping key that names no field of t, at its
// line, with its path. Type mismatches are left to the decoder.
func checkFields(file string, n *yaml.Node, t reflect.Type, p path, errs *ErrorList) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nodeType {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fieldByTag(t, k.Value)
			if !ok {
				*errs = append(*errs, &Error{File: file, Line: k.Line, Column: k.Column, Field: p.key(k.Value).String(),
					Msg: fmt.Sprintf("unknown field (known: %s)", strings.Join(tagNames(t), ", "))})
				continue
			}
			checkFields(file, v, f.Type, p.key(k.Value), errs)
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				checkFields(file, c, t.Elem(), p.idx(i), errs)
			}
		}
	case reflect.Map:
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				checkFields(file, n.Content[i+1], t.Elem(), p.key(n.Content[i].Value), errs)
			}
		}
	}
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); tag == name && f.IsExported() {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func tagNames(t reflect.Type) []string {
	var out []string
	for i := 0; i < t.NumField(); i++ {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			out = append(out, tag)
		}
	}
	return out
}
