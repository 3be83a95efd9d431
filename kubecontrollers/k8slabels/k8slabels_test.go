package k8slabels

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPod(t *testing.T) {
	l, dropped := Pod(map[string]string{
		"app": "web", "pcns.team": "a", "bgpfabric.io/serviceaccount": "forged", "bad key": "x", "ok": "bad value!",
	}, "web-sa")
	if diff := cmp.Diff(map[string]string{"app": "web", LabelServiceAccount: "web-sa"}, l); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"bad key", "bgpfabric.io/serviceaccount", "ok", "pcns.team"}, dropped); diff != "" {
		t.Errorf("dropped (-want +got):\n%s", diff)
	}
	if l, _ := Pod(nil, ""); len(l) != 0 {
		t.Errorf("no labels, no service account: %v", l)
	}
	if l, _ := Pod(nil, "not a value!"); len(l) != 0 {
		t.Errorf("an invalid service account name became a label: %v", l)
	}
}
