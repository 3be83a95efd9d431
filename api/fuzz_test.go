package api

import (
	"testing"
)

// FuzzDecode checks that no document makes Decode, Default, Validate or
// Encode panic, and that whatever decodes survives an encode and decode.
func FuzzDecode(f *testing.F) {
	for _, r := range examples() {
		data, err := Encode(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"kind":"NetworkPolicy","spec":{"ingress":[{"protocol":1e400,"destination":{"ports":[-1,"1:0",null]}}]}}`))
	f.Add([]byte(`{"kind":"IPAMBlock","spec":{"cidr":"10.0.0.0/8","allocations":[null,5],"unallocated":[-1]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decode(data)
		if err != nil {
			return
		}
		_ = ValidateResource(r)
		out, err := Encode(r)
		if err != nil {
			t.Fatalf("Encode after Decode(%q): %v", data, err)
		}
		if _, err := Decode(out); err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v\n%s", data, err, out)
		}
	})
}
