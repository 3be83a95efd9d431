package datastore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
)

// listPageSize is how many keys one range request returns; pages are read
// at one revision, so the whole list is one consistent snapshot.
const listPageSize = 2000

// decodeChunk is the least work worth a goroutine when decoding a list:
// decoding dominates the cost of a large snapshot, so it is spread over
// the CPUs.
const decodeChunk = 500

// listResult is every resource under a prefix at one revision.
type listResult struct {
	resources []api.Resource
	revision  int64
	// bad are the values that did not decode, each naming its key.
	bad []*DecodeError
}

// listPrefix reads every key under prefix at revision rev (0: the current
// one), page by page, and decodes the values.
func (c *Client) listPrefix(ctx context.Context, prefix string, rev int64) (listResult, error) {
	var kvs []*mvccpb.KeyValue
	end := clientv3.GetPrefixRangeEnd(prefix)
	start := prefix
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := c.cli.Get(ctx, start, opts...)
		if err != nil {
			return listResult{}, fmt.Errorf("listing %s at revision %d: %w", prefix, rev, toCompacted(err, rev))
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		kvs = append(kvs, resp.Kvs...)
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	res := decodeAll(kvs)
	res.revision = rev
	return res, nil
}

// decodeAll decodes values in parallel, keeping their order.
func decodeAll(kvs []*mvccpb.KeyValue) listResult {
	rs := make([]api.Resource, len(kvs))
	errs := make([]error, len(kvs))
	workers := min(runtime.GOMAXPROCS(0), (len(kvs)+decodeChunk-1)/decodeChunk)
	if workers <= 1 {
		for i, kv := range kvs {
			rs[i], errs[i] = decodeKV(kv)
		}
	} else {
		var wg sync.WaitGroup
		per := (len(kvs) + workers - 1) / workers
		for lo := 0; lo < len(kvs); lo += per {
			hi := min(lo+per, len(kvs))
			wg.Go(func() {
				for i := lo; i < hi; i++ {
					rs[i], errs[i] = decodeKV(kvs[i])
				}
			})
		}
		wg.Wait()
	}
	res := listResult{resources: make([]api.Resource, 0, len(kvs))}
	for i, r := range rs {
		if errs[i] != nil {
			var de *DecodeError
			errors.As(errs[i], &de)
			res.bad = append(res.bad, de)
			continue
		}
		res.resources = append(res.resources, r)
	}
	return res
}
