package api

import (
	"encoding/json"
	"reflect"
)

// deepCopy copies a resource through its JSON form, which every field of the
// model round-trips through by construction (the round-trip tests check it).
// Hot paths that copy often may give their kind a hand-written copy instead.
func deepCopy[T Resource](r T) Resource {
	data, err := json.Marshal(r)
	if err != nil {
		panic("api: resource does not marshal: " + err.Error())
	}
	c := reflect.New(reflect.TypeOf(r).Elem()).Interface().(T)
	if err := json.Unmarshal(data, c); err != nil {
		panic("api: resource does not unmarshal: " + err.Error())
	}
	return c
}
