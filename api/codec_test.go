package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExamplesCoverEveryKind(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range examples() {
		seen[r.GetTypeMeta().Kind] = true
	}
	for _, ki := range Kinds() {
		if !seen[ki.Kind] {
			t.Errorf("no example of kind %s", ki.Kind)
		}
	}
}

func TestExamplesValid(t *testing.T) {
	for _, r := range examples() {
		if err := r.Validate(); err != nil {
			t.Errorf("%s: %v", r.GetTypeMeta().Kind, err)
		}
		d := r.DeepCopyResource()
		d.Default()
		if diff := cmp.Diff(r, d); diff != "" {
			t.Errorf("%s: Default changed a defaulted example (-before +after):\n%s", r.GetTypeMeta().Kind, diff)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, r := range examples() {
		data, err := Encode(r)
		if err != nil {
			t.Fatalf("Encode(%s): %v", r.GetTypeMeta().Kind, err)
		}
		got, err := Decode(data)
		if err != nil {
			t.Fatalf("Decode(%s): %v\n%s", r.GetTypeMeta().Kind, err, data)
		}
		if diff := cmp.Diff(r, got); diff != "" {
			t.Errorf("%s: Decode(Encode(x)) differs (-want +got):\n%s\n%s", r.GetTypeMeta().Kind, diff, data)
		}
	}
}

func TestDeepCopyShares(t *testing.T) {
	for _, r := range examples() {
		c := r.DeepCopyResource()
		c.GetObjectMeta().Labels["role"] = "changed"
		if r.GetObjectMeta().Labels["role"] == "changed" {
			t.Errorf("%s: copy shares its labels", r.GetTypeMeta().Kind)
		}
	}
}

func TestEncodeDropsResourceVersion(t *testing.T) {
	n := &Node{TypeMeta: tm(KindNode), ObjectMeta: ObjectMeta{Name: "a", ResourceVersion: "42"}}
	data, err := Encode(n)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "resourceVersion") {
		t.Errorf("Encode kept resourceVersion: %s", data)
	}
	if n.ResourceVersion != "42" {
		t.Errorf("Encode changed its argument")
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		doc, want string
	}{
		{`{"kind":"BGPPeer","metadata":{"name":"a"},"spec":{"peerIp":"10.0.0.1"}}`, `decoding BGPPeer: json: unknown field "peerIp" in spec (did you mean "peerIP"?)`},
		{`{"kind":"Node","metadata":{"name":"a"},"spex":{}}`, `decoding Node: json: unknown field "spex"`},
		{`{"kind":"GlobalNetworkPolicy","metadata":{"name":"a"},"spec":{"egress":[{"action":"Allow"},{"source":{"port":[80]}}]}}`,
			`decoding GlobalNetworkPolicy: json: unknown field "port" in spec.egress[1].source`},
		{`{"kind":"Node","metadata":{"name":"a"},"spec":{"bgp":{"asNumber":-1}}}`,
			`decoding Node: json: cannot unmarshal number -1 into Go struct field NodeBGPSpec.spec.bgp.asNumber of type uint32`},
		{`{"metadata":{"name":"a"}}`, `decoding resource: missing field "kind"`},
		{`{"kind":"Router"}`, `decoding resource: unknown kind "Router"`},
		{`{"kind":"bgppeers"}`, `decoding resource: kind "bgppeers" must be spelled "BGPPeer"`},
		{`{"kind":"Node","apiVersion":"v2"}`, `decoding Node: apiVersion "v2" is not supported (want "bgpfabric.io/v1")`},
		{`{"kind":"Node","metadata":{"name":"a"}} {}`, `decoding resource: invalid character '{' after top-level value`},
		{`{"kind":"NetworkPolicy","metadata":{"name":"a"},"spec":{"ingress":[{"protocol":true}]}}`, `decoding NetworkPolicy: protocol must be a string or a number, not true`},
		{`not json`, `decoding resource: invalid character 'o' in literal null (expecting 'u')`},
	}
	for _, tt := range tests {
		_, err := Decode([]byte(tt.doc))
		if err == nil || err.Error() != tt.want {
			t.Errorf("Decode(%s)\n got error %v\nwant error %s", tt.doc, err, tt.want)
		}
	}
}

func TestDecodeNumbersAndStrings(t *testing.T) {
	doc := `{"kind":"NetworkPolicy","metadata":{"name":"a","namespace":"n"},"spec":{"ingress":[
		{"action":"Allow","protocol":6,"destination":{"ports":[80,"443","1000:2000","http",0]}},
		{"action":"Allow","protocol":"udp","notProtocol":300}]}}`
	r, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	np := r.(*NetworkPolicy)
	if diff := cmp.Diff([]Port{"80", "443", "1000:2000", "http", "0"}, np.Spec.Ingress[0].Destination.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	err = ValidateResource(np)
	want := []string{"spec.ingress[0].destination.ports[4]", "spec.ingress[1].notProtocol"}
	if diff := cmp.Diff(want, errorFields(err)); diff != "" {
		t.Errorf("fields (-want +got):\n%s\n%v", diff, err)
	}
	if got := *np.Spec.Ingress[1].Protocol; got != ProtocolUDP {
		t.Errorf("Default left protocol %q, want UDP", got)
	}
	data, err := Encode(np)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"protocol":6`, `"ports":[80,443,"1000:2000","http",0]`, `"notProtocol":300`} {
		if !strings.Contains(string(data), frag) {
			t.Errorf("Encode: missing %s in %s", frag, data)
		}
	}
}

func TestValidationErrorString(t *testing.T) {
	p := &BGPPeer{ObjectMeta: ObjectMeta{Name: "rack1"}, Spec: BGPPeerSpec{PeerIP: "10.0.0.1:99999", ASNumber: ptr(uint32(0))}}
	err := ValidateResource(p)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a *ValidationError", err)
	}
	want := `BGPPeer rack1 is invalid: spec.peerIP: must be an IP address, optionally with a port ("10.0.0.1:1179", "[fd00::1]:1179") (got "10.0.0.1:99999"); spec.asNumber: must be an AS number from 1 to 4294967295 (got 0)`
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
}
