package api

import (
	"errors"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// errorFields returns the sorted field paths of a *ValidationError, nil for
// no error, and ["<not a ValidationError>"] for anything else.
func errorFields(err error) []string {
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return []string{"<not a ValidationError: " + err.Error() + ">"}
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	sort.Strings(out)
	return out
}

// validationCase is one row of a kind's validation table: a change to a
// valid resource and the fields that must then be reported (none if want
// is nil).
type validationCase[T Resource] struct {
	name   string
	mutate func(T)
	want   []string
}

// runValidation applies each case to a fresh copy of base, then defaults
// and validates it.
func runValidation[T Resource](t *testing.T, base func() T, cases []validationCase[T]) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := base()
			c.mutate(r)
			err := ValidateResource(r)
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if diff := cmp.Diff(want, errorFields(err)); diff != "" {
				t.Errorf("fields (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}
