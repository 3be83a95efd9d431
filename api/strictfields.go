package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
)

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkFields walks a JSON document alongside the Go type it will be
// decoded into and reports the first object key that is not exactly the
// JSON name of a field, with where it is and, for a case mismatch, the
// right spelling. A document that is not valid JSON passes: the decoder
// then reports it.
func checkFields(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return walkFields(v, t, "")
}

func walkFields(v any, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := map[string]reflect.Type{}
		jsonFields(t, fields)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			val := obj[k]
			ft, ok := fields[k]
			if ok {
				if err := walkFields(val, ft, join(path, k)); err != nil {
					return err
				}
				continue
			}
			where := ""
			if path != "" {
				where = " in " + path
			}
			for name := range fields {
				if strings.EqualFold(name, k) {
					return fmt.Errorf("json: unknown field %q%s (did you mean %q?)", k, where, name)
				}
			}
			return fmt.Errorf("json: unknown field %q%s", k, where)
		}
	case reflect.Slice, reflect.Array:
		arr, _ := v.([]any)
		for i, e := range arr {
			if err := walkFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, _ := v.(map[string]any)
		for k, e := range obj {
			if err := walkFields(e, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonFields collects the JSON names of a struct's fields, descending into
// embedded structs without a name, as encoding/json does.
func jsonFields(t reflect.Type, out map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				jsonFields(ft, out)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}
