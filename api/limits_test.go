package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeRefusesDuplicateFields(t *testing.T) {
	tests := []struct {
		in   string
		want DuplicateFieldError
	}{
		{`{"kind":"IPPool","metadata":{"name":"p"},"spec":{"cidr":"10.0.0.0/8","cidr":"0.0.0.0/0"}}`,
			DuplicateFieldError{Path: "spec.cidr", Line: 1, FirstLine: 1}},
		{"{\"kind\":\"Node\",\n\"metadata\":{\"name\":\"n\",\n\"labels\":{\"a\":\"1\",\n\"a\":\"2\"}}}",
			DuplicateFieldError{Path: "metadata.labels.a", Line: 4, FirstLine: 3}},
		{`{"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{"ingress":[{"action":"Allow"},{"action":"Allow","action":"Deny"}]}}`,
			DuplicateFieldError{Path: "spec.ingress[1].action", Line: 1, FirstLine: 1}},
		{`{"kind":"Node","kind":"Node","metadata":{"name":"n"}}`, DuplicateFieldError{Path: "kind", Line: 1, FirstLine: 1}},
	}
	for _, tc := range tests {
		_, err := Decode([]byte(tc.in))
		var dup *DuplicateFieldError
		if !errors.As(err, &dup) {
			t.Errorf("Decode(%s) = %v, want a DuplicateFieldError", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, *dup); diff != "" {
			t.Errorf("Decode(%s) (-want +got):\n%s", tc.in, diff)
		}
	}
	// The same keys in different objects are not duplicates.
	if _, err := Decode([]byte(`{"kind":"Node","metadata":{"name":"n","labels":{"name":"x"}}}`)); err != nil {
		t.Errorf("same key in two objects: %v", err)
	}
}

func TestDecodeLimits(t *testing.T) {
	big := `{"kind":"Node","metadata":{"name":"n","annotations":{"a":"` + strings.Repeat("x", 8<<20) + `"}}}`
	if _, err := Decode([]byte(big)); err == nil || !strings.Contains(err.Error(), "at most 1572864") {
		t.Errorf("8 MiB document: err = %.200v", err)
	}
	deep := `{"kind":"Node","metadata":{"name":"n","labels":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}}`
	if _, err := Decode([]byte(deep)); err == nil || !strings.Contains(err.Error(), "deeper than 64") {
		t.Errorf("deep document: err = %v", err)
	}
}

func TestAnnotationsSizeLimit(t *testing.T) {
	base := func() *Node { return &Node{ObjectMeta: ObjectMeta{Name: "n"}} }
	runValidation(t, base, []validationCase[*Node]{
		{"at the limit", func(n *Node) {
			n.Annotations = map[string]string{"a": strings.Repeat("x", MaxAnnotationsSize-2), "b": ""}
		}, nil},
		{"one byte over, across two", func(n *Node) {
			n.Annotations = map[string]string{"a": strings.Repeat("x", MaxAnnotationsSize/2), "b": strings.Repeat("x", MaxAnnotationsSize/2-1)}
		}, []string{"metadata.annotations"}},
		{"8 MiB", func(n *Node) { n.Annotations = map[string]string{"a": strings.Repeat("x", 8<<20)} }, []string{"metadata.annotations"}},
	})
}
