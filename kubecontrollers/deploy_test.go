package kubecontrollers

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/restmapper"

	"github.com/bgpfabric/bgpfabric/internal/kubetest"
)

// strictDecoder decodes Kubernetes objects of the built-in kinds and
// fails on a field their types do not have, or a field set twice.
var strictDecoder = serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

// manifestObjects decodes every document of a YAML stream strictly.
func manifestObjects(data []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := strictDecoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

// testDeployManifests: every manifest in deploy/ decodes strictly into
// the Kubernetes API types (an unknown field fails, as a check of the
// check shows), the CNI configuration lists it carries parse as
// bgpfabric-cni's, and the API server accepts every object in a
// server-side dry run with strict field validation.
func testDeployManifests(t *testing.T, e *env) {
	ctx := t.Context()
	if _, err := manifestObjects([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}\nbogus: 1\n")); err == nil ||
		!strings.Contains(err.Error(), "bogus") {
		t.Fatalf("strict decoding of an unknown field: %v; want an error naming it", err)
	}
	cfg := e.api.Config(kubetest.Admin)
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("../deploy/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("deploy/*.yaml: %v, %v", files, err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := manifestObjects(data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, obj := range objs {
			gvk := obj.GetObjectKind().GroupVersionKind()
			kinds[gvk.Kind]++
			if cm, ok := obj.(*corev1.ConfigMap); ok {
				for name, v := range cm.Data {
					if !strings.HasSuffix(name, ".conflist") {
						continue
					}
					cl, err := libcni.ConfListFromBytes([]byte(v))
					if err != nil || len(cl.Plugins) == 0 || cl.Plugins[0].Network.Type != "bgpfabric-cni" {
						t.Errorf("%s: ConfigMap %s: %s: %v (the first plugin must be bgpfabric-cni)", f, cm.Name, name, err)
					}
				}
			}
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: m}
			mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Errorf("%s: %s: %v", f, gvk, err)
				continue
			}
			var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
			if mapping.Scope.Name() == "namespace" {
				ri = dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
			}
			if _, err := ri.Create(ctx, u, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}); err != nil {
				t.Errorf("%s: %s %s/%s: dry run: %v", f, gvk.Kind, u.GetNamespace(), u.GetName(), err)
			}
		}
	}
	for _, k := range []string{"DaemonSet", "Deployment", "ConfigMap", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in deploy/: %v", k, kinds)
		}
	}
	t.Logf("objects checked: %v", kinds)
}
