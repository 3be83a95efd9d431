package api

import (
	"errors"

	"github.com/bgpfabric/bgpfabric/api/selector"
)

// ValidateResource defaults r in place and then validates it: what a
// datastore write or an "apply" does with user input. Its error is a
// *ValidationError.
func ValidateResource(r Resource) error {
	r.Default()
	return r.Validate()
}

// validateSelector checks that s parses as a selector; the error names the
// field and the column of the offending token.
func validateSelector(fe *fieldErrors, path, s string) {
	if _, err := selector.Parse(s); err != nil {
		var pe *selector.ParseError
		if errors.As(err, &pe) {
			fe.add(path, s, "column %d: %s", pe.Column, pe.Msg)
		} else {
			fe.add(path, s, "%v", err)
		}
	}
}

// setTypeMeta fills in an empty TypeMeta: the default part of every kind's
// Default.
func setTypeMeta(tm *TypeMeta, kind string) {
	if tm.Kind == "" {
		tm.Kind = kind
	}
	if tm.APIVersion == "" {
		tm.APIVersion = APIVersion
	}
}

// validateASN checks an optional AS number: 1..4294967295, as 0 is
// reserved (RFC 7607).
func validateASN(fe *fieldErrors, path string, asn *uint32) {
	if asn != nil && *asn == 0 {
		fe.add(path, *asn, "must be an AS number from 1 to 4294967295")
	}
}
