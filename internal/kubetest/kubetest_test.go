package kubetest

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// TestAPIServer starts the real API server, writes and reads a Namespace
// through it as the admin, is refused as the unprivileged user, and reads
// the namespace back after a restart (its etcd keeps the data).
func TestAPIServer(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	c := s.Client(t)
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kt"}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a namespace: %v", err)
	}
	unpriv, err := kubernetes.NewForConfig(s.Config(Unprivileged))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unpriv.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("unprivileged list of namespaces: %v, want Forbidden", err)
	}
	s.Restart()
	ns, err := c.CoreV1().Namespaces().Get(context.Background(), "kt", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading the namespace after a restart: %v", err)
	}
	if ns.Labels[corev1.LabelMetadataName] != "kt" {
		t.Errorf("namespace labels %v: want %s=kt set by the API server", ns.Labels, corev1.LabelMetadataName)
	}
}
