package cni

import (
	"context"
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/bgpfabric/bgpfabric/internal/kuberest"
)

// The plugin reads a pod from the Kubernetes API server with one plain
// HTTPS GET (package kuberest), not with client-go: the plugin is a mode of
// the node binary, and client-go's packages alone would double that binary
// and raise every one of its processes' memory (docs/kubernetes.md).

// loadKubeconfig reads the configuration's kubeconfig; errors are code 7
// naming kubernetes.kubeconfig.
func loadKubeconfig(path string) (*kuberest.Client, error) {
	k, err := kuberest.Load(path)
	if err != nil {
		return nil, configError("kubernetes.kubeconfig", "%v", err)
	}
	return k, nil
}

// pod is the part of a Pod the plugin uses.
type pod struct {
	Metadata struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		ServiceAccountName string `json:"serviceAccountName"`
		NodeName           string `json:"nodeName"`
	} `json:"spec"`
}

// getPod reads pod namespace/name. An unreachable API server is code 11
// (try again later), anything else 999; the message names the server and
// the pod.
func getPod(ctx context.Context, k *kuberest.Client, namespace, name string) (*pod, error) {
	var p pod
	err := k.Do(ctx, "GET", kuberest.PodPath(namespace, name), nil, &p)
	if err == nil {
		return &p, nil
	}
	msg := fmt.Sprintf("reading pod %s/%s from the Kubernetes API server %s: %v", namespace, name, k.Server(), err)
	if errors.Is(err, kuberest.ErrUnavailable) {
		return nil, types.NewError(types.ErrTryAgainLater, msg, "")
	}
	return nil, types.NewError(types.ErrInternal, msg, "")
}
