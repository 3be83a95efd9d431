package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// Decode parses one JSON document into a resource of the kind its "kind"
// field names. Unknown fields are an error naming the field, so that a typo
// in a document is not silently dropped; field names must match exactly,
// also in case (encoding/json alone would take "peerIp" for "peerIP"). A
// field given twice in one object is an error (a *DuplicateFieldError),
// as is a document larger than MaxDocumentSize. The result is neither
// defaulted nor validated.
func Decode(data []byte) (Resource, error) {
	if err := checkDocument(data); err != nil {
		return nil, fmt.Errorf("decoding resource: %w", err)
	}
	var tm TypeMeta
	if err := json.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("decoding resource: %w", err)
	}
	if tm.Kind == "" {
		return nil, fmt.Errorf("decoding resource: missing field \"kind\"")
	}
	if tm.APIVersion != "" && tm.APIVersion != APIVersion {
		return nil, fmt.Errorf("decoding %s: apiVersion %q is not supported (want %q)", tm.Kind, tm.APIVersion, APIVersion)
	}
	ki, err := LookupKind(tm.Kind)
	if err != nil {
		return nil, fmt.Errorf("decoding resource: %w", err)
	}
	if ki.Kind != tm.Kind {
		return nil, fmt.Errorf("decoding resource: kind %q must be spelled %q", tm.Kind, ki.Kind)
	}
	r := ki.New()
	if err := checkFields(data, reflect.TypeOf(r)); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", ki.Kind, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", ki.Kind, err)
	}

	*r.GetTypeMeta() = TypeMeta{APIVersion: APIVersion, Kind: ki.Kind}
	return r, nil
}

// Encode renders a resource as JSON with its TypeMeta filled in. The
// ResourceVersion is left out: it belongs to the datastore, not the value.
func Encode(r Resource) ([]byte, error) {
	c := r.DeepCopyResource()
	tm := c.GetTypeMeta()
	if tm.APIVersion == "" {
		tm.APIVersion = APIVersion
	}
	c.GetObjectMeta().ResourceVersion = ""
	return json.Marshal(c)
}
