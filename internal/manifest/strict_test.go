package manifest

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/bgpfabric/bgpfabric/api"
)

// A field given twice is refused with the file, the line of both and the
// field's path: YAML and JSON decoders would keep the last value, so
// `cidr: 10.0.0.0/8` then `cidr: 0.0.0.0/0` would silently mean /0.
func TestParseRefusesDuplicateFields(t *testing.T) {
	tests := []struct {
		name, file, in string
		want           []string
	}{
		{"yaml cidr", "pools.yaml",
			"kind: Node\nmetadata: {name: n}\n---\nkind: IPPool\nmetadata:\n  name: p\nspec:\n  cidr: 10.0.0.0/8\n  cidr: 0.0.0.0/0\n",
			[]string{"pools.yaml: document 2 (line 4)", "line 9: spec.cidr: duplicate field (first set on line 8)"}},
		{"yaml label", "n.yaml", "kind: Node\nmetadata:\n  name: n\n  labels:\n    rack: r1\n    rack: r2\n",
			[]string{"line 6: metadata.labels.rack: duplicate field (first set on line 5)"}},
		{"yaml in a list", "p.yaml",
			"kind: GlobalNetworkPolicy\nmetadata: {name: p}\nspec:\n  ingress:\n  - action: Allow\n    action: Deny\n",
			[]string{"line 6: spec.ingress[0].action: duplicate field"}},
		{"yaml flow mapping", "n.yaml", "kind: Node\nmetadata: {name: a, name: b}\n",
			[]string{"line 2: metadata.name: duplicate field"}},
		{"yaml top level", "n.yaml", "kind: Node\nmetadata: {name: a}\nkind: Node\n",
			[]string{"line 3: kind: duplicate field (first set on line 1)"}},
		{"json object", "p.json", "{\"kind\": \"IPPool\",\n \"metadata\": {\"name\": \"p\"},\n \"spec\": {\"cidr\": \"10.0.0.0/8\",\n  \"cidr\": \"0.0.0.0/0\"}}\n",
			[]string{"p.json: document 1 (line 1)", "line 4: spec.cidr: duplicate field (first set on line 3)"}},
		{"json array", "p.json", "[\n{\"kind\": \"Node\", \"metadata\": {\"name\": \"a\"}},\n{\"kind\": \"IPPool\",\n \"metadata\": {\"name\": \"p\"},\n \"spec\": {\"cidr\": \"10.0.0.0/8\",\n  \"cidr\": \"0.0.0.0/0\"}}\n]\n",
			[]string{"p.json: document 2 (line 3)", "line 6: spec.cidr: duplicate field (first set on line 5)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Parse(tc.file, []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; got %d documents: %+v", len(docs), docs[len(docs)-1].Resource)
			}
			var dup *api.DuplicateFieldError
			if !errors.As(err, &dup) {
				t.Errorf("error %q is not a DuplicateFieldError", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Sizes: a document above 1.5 MiB (etcd's request limit) and annotations
// above 256 KiB (Kubernetes' limit) are refused with a clear error.
func TestParseSizeLimits(t *testing.T) {
	node := func(annotation int) string {
		return "kind: Node\nmetadata:\n  name: node-1\n  annotations:\n    example.com/blob: " + strings.Repeat("x", annotation) + "\n"
	}
	jsonNode := func(annotation int) string {
		return `[{"kind":"Node","metadata":{"name":"n","annotations":{"example.com/blob":"` + strings.Repeat("x", annotation) + `"}}}]`
	}
	for _, tc := range []struct {
		name, file, in string
		want           []string // nil: accepted
	}{
		{"8 MiB annotation", "n.yaml", node(8 << 20), []string{"document 1 (line 1)", "document is 8388", "at most 1572864"}},
		{"8 MiB annotation json", "n.json", jsonNode(8 << 20), []string{"document 1", "document is 8388", "at most 1572864"}},
		{"300 KiB annotation", "n.yaml", node(300 << 10), []string{"metadata.annotations: total size of keys and values is 307216 bytes: at most 262144"}},
		{"annotations at the limit", "n.yaml", node(256<<10 - len("example.com/blob")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Parse(tc.file, []byte(tc.in))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %d documents", len(docs))
			}
			msg := err.Error()
			if len(msg) > 2000 {
				t.Errorf("error of %d bytes: it must not quote the document", len(msg))
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %.300q does not contain %q", msg, w)
				}
			}
		})
	}
}

// Nesting is bounded in both syntaxes.
func TestParseNestingLimit(t *testing.T) {
	deepJSON := `[{"kind":"Node","metadata":{"name":"n","labels":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}]`
	deepYAML := "kind: Node\nmetadata:\n  name: node-1\n  labels: " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n"
	for name, in := range map[string]string{"n.json": deepJSON, "n.yaml": deepYAML} {
		_, err := Parse(name, []byte(in))
		if err == nil || !strings.Contains(err.Error(), "deeper than 64 levels") {
			t.Errorf("%s: err = %v, want a nesting error", name, err)
		}
	}
}

// A file (or stdin) above MaxFileSize is refused without reading more
// than the limit.
func TestReadFileLimit(t *testing.T) {
	big := &countingReader{n: MaxFileSize + 10<<20}
	if _, _, err := ReadFile("-", big); err == nil || !strings.Contains(err.Error(), "<stdin>: larger than 67108864 bytes") {
		t.Errorf("err = %v", err)
	}
	if big.read > MaxFileSize+1 {
		t.Errorf("read %d bytes, want at most %d", big.read, MaxFileSize+1)
	}
	data, name, err := ReadFile("-", strings.NewReader("kind: Node\n"))
	if err != nil || name != "<stdin>" || string(data) != "kind: Node\n" {
		t.Errorf("small stdin: %q, %q, %v", data, name, err)
	}
}

// countingReader yields n bytes of 'x' and counts what was read.
type countingReader struct{ n, read int }

func (r *countingReader) Read(p []byte) (int, error) {
	if r.read >= r.n {
		return 0, io.EOF
	}
	k := min(len(p), r.n-r.read)
	for i := range k {
		p[i] = 'x'
	}
	r.read += k
	return k, nil
}
