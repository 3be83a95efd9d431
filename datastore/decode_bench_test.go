package datastore

import (
	"fmt"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/bgpfabric/bgpfabric/api"
)

// BenchmarkDecodeSnapshot10k measures decoding a 10,000-endpoint snapshot
// (run with -cpu 1,2 to see the parallel decode).
func BenchmarkDecodeSnapshot10k(b *testing.B) {
	kvs := make([]*mvccpb.KeyValue, 10000)
	for i := range kvs {
		w := &api.WorkloadEndpoint{
			TypeMeta:   api.TypeMeta{Kind: api.KindWorkloadEndpoint},
			ObjectMeta: api.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("node-k8s-pod--%d-eth0", i), Labels: map[string]string{"app": "a"}},
			Spec: api.WorkloadEndpointSpec{Node: "node", Orchestrator: "k8s", Workload: fmt.Sprint("pod-", i), Endpoint: "eth0",
				InterfaceName: fmt.Sprintf("cali%011x", i), IPNetworks: []string{fmt.Sprintf("10.1.%d.%d/32", i>>8, i&0xff)}},
		}
		k, _ := api.KeyOf(w)
		v, err := api.Encode(w)
		if err != nil {
			b.Fatal(err)
		}
		kvs[i] = &mvccpb.KeyValue{Key: []byte(k), Value: v, ModRevision: int64(i + 1)}
	}
	b.ResetTimer()
	for range b.N {
		if res := decodeAll(kvs); len(res.resources) != len(kvs) {
			b.Fatalf("%d decoded, %d bad: %v", len(res.resources), len(res.bad), res.bad[0])
		}
	}
	b.ReportMetric(float64(b.N*len(kvs))/b.Elapsed().Seconds(), "resources/s")
}
