package api

import (
	"fmt"
	"strings"
)

// FieldError is one thing wrong with a resource: the JSON path of the field
// (e.g. "spec.ingress[0].destination.ports[1]"), the value found, and why
// it is wrong.
type FieldError struct {
	Field  string
	Value  any
	Reason string
}

// Error renders the error as "field: reason (got value)"; string values are
// quoted, so that an empty or space-padded value is visible.
func (e FieldError) Error() string {
	switch v := e.Value.(type) {
	case nil:
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	case string:
		return fmt.Sprintf("%s: %s (got %q)", e.Field, e.Reason, v)
	}
	return fmt.Sprintf("%s: %s (got %v)", e.Field, e.Reason, e.Value)
}

// ValidationError lists every field that is wrong in one resource.
type ValidationError struct {
	Kind, Namespace, Name string
	Fields                []FieldError
}

// Error lists every field error, e.g. "BGPPeer rack1 is invalid: spec.peerIP:
// is required (got "")".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind)
	if e.Namespace != "" {
		b.WriteString(" " + e.Namespace + "/" + e.Name)
	} else if e.Name != "" {
		b.WriteString(" " + e.Name)
	}
	b.WriteString(" is invalid: ")
	for i, f := range e.Fields {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

// fieldErrors collects FieldErrors while a resource is validated.
type fieldErrors []FieldError

func (fe *fieldErrors) add(field string, value any, format string, args ...any) {
	*fe = append(*fe, FieldError{Field: field, Value: value, Reason: fmt.Sprintf(format, args...)})
}

// result turns the collected errors into a *ValidationError for r, which is
// of the given kind, or nil. (The kind is passed in rather than read from r,
// whose TypeMeta may be empty when it was built in code.)
func (fe fieldErrors) result(kind string, r Resource) error {
	if len(fe) == 0 {
		return nil
	}
	m := r.GetObjectMeta()
	return &ValidationError{Kind: kind, Namespace: m.Namespace, Name: m.Name, Fields: fe}
}
