package manifest

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseYAMLDocuments(t *testing.T) {
	in := `# a comment before the first document
---
apiVersion: bgpfabric.io/v1
kind: Node
metadata:
  name: node-1
  labels: {rack: r1}
---
---
# an empty document above and a comment-only one here
---
kind: Node
metadata:
  name: node-2
`
	docs, err := Parse("fabric.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.Source.String()+" "+d.Resource.GetTypeMeta().Kind+"/"+d.Resource.GetObjectMeta().Name)
	}
	want := []string{
		"fabric.yaml: document 1 (line 3) Node/node-1",
		"fabric.yaml: document 2 (line 12) Node/node-2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
	if got := docs[0].Resource.GetObjectMeta().Labels["rack"]; got != "r1" {
		t.Errorf("labels not decoded: rack=%q", got)
	}
	if got := docs[1].Resource.GetTypeMeta().APIVersion; got != "bgpfabric.io/v1" {
		t.Errorf("apiVersion not filled in: %q", got)
	}
}

func TestParseJSON(t *testing.T) {
	for _, in := range []string{
		`{"kind":"Node","metadata":{"name":"a"}}`,
		`[{"kind":"Node","metadata":{"name":"a"}},{"kind":"Node","metadata":{"name":"b"}}]`,
	} {
		docs, err := Parse("x.json", []byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if docs[0].Resource.GetObjectMeta().Name != "a" {
			t.Errorf("%s: first document is %q", in, docs[0].Resource.GetObjectMeta().Name)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // substrings the error must contain
	}{
		{"empty", "\n# nothing\n", []string{"f.yaml: no documents found"}},
		{"no kind", "metadata:\n  name: a\n", []string{"document 1 (line 1)", `missing field "kind"`}},
		{"unknown kind", "kind: Router\nmetadata: {name: a}\n", []string{`unknown kind "Router"`}},
		{"wrong apiVersion", "apiVersion: v9\nkind: Node\nmetadata: {name: a}\n", []string{`apiVersion "v9"`}},
		{"unknown field", "kind: Node\nmetadata: {name: a}\nspec: {bgpp: {}}\n", []string{"document 1", `unknown field "bgpp"`}},
		{"invalid name", "kind: Node\nmetadata: {name: Bad_Name}\n", []string{"metadata.name", "DNS-1123"}},
		{"bad yaml line", "kind: Node\nmetadata: {name: a}\n---\nkind: Node\nmetadata:\n  name: b\n   bad: [\n", []string{"document 2 (line 4)", "invalid YAML", "line 7"}},
		{"scalar document", "just a string\n", []string{"must be a mapping"}},
		{"every bad document reported", "kind: Node\nmetadata: {name: A}\n---\nkind: Node\nmetadata: {name: ok}\n---\nkind: Node\nmetadata: {name: B}\n",
			[]string{"document 1 (line 1)", "document 3 (line 7)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Parse("f.yaml", []byte(tc.in))
			if err == nil {
				t.Fatalf("no error; got %d documents", len(docs))
			}
			if docs != nil {
				t.Errorf("documents returned with an error: %d", len(docs))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
