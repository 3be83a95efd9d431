package datastore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
)

// applyAttempts bounds how often Apply re-reads after losing a race with
// another writer of the same keys.
const applyAttempts = 10

// Apply creates r or overwrites what is stored, whatever its version. An
// existing resource keeps its UID and creation timestamp.
func (c *Client) Apply(ctx context.Context, r api.Resource) (api.Resource, error) {
	obj, key, err := prepare(r)
	if err != nil {
		return nil, fmt.Errorf("applying resource: %w", err)
	}
	out, err := c.applyObjects(ctx, []api.Resource{obj}, []string{key})
	if err != nil {
		return nil, fmt.Errorf("applying %s: %w", IDOf(obj), err)
	}
	return out[0], nil
}

// ApplyAll applies many resources in one etcd transaction: either all are
// written or none. Every resource is defaulted and validated first, and if
// any is invalid (or two name the same resource) the error lists each by
// index and name and nothing is written. A batch larger than one
// transaction may hold is refused with ErrTooManyOps. The results are in
// the order of rs and share one ResourceVersion.
func (c *Client) ApplyAll(ctx context.Context, rs []api.Resource) ([]api.Resource, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	objs := make([]api.Resource, len(rs))
	keys := make([]string, len(rs))
	seen := make(map[string]int, len(rs))
	var errs []error
	for i, r := range rs {
		obj, key, err := prepare(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i, err))
			continue
		}
		if j, dup := seen[key]; dup {
			errs = append(errs, fmt.Errorf("document %d: %s is also document %d", i, IDOf(obj), j))
			continue
		}
		seen[key] = i
		objs[i], keys[i] = obj, key
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("applying %d resources: nothing written: %w", len(rs), errors.Join(errs...))
	}
	if c.maxTxnOps > 0 && len(rs) > c.maxTxnOps {
		return nil, fmt.Errorf("applying %d resources: nothing written: %w (etcd allows %d per transaction)", len(rs), ErrTooManyOps, c.maxTxnOps)
	}
	out, err := c.applyObjects(ctx, objs, keys)
	if err != nil {
		return nil, fmt.Errorf("applying %d resources: %w", len(rs), err)
	}
	return out, nil
}

// applyObjects writes prepared objects at their keys in one transaction.
// It reads the current versions (to keep identities), then writes under a
// compare of every version it read, and starts over if another writer came
// in between.
func (c *Client) applyObjects(ctx context.Context, objs []api.Resource, keys []string) ([]api.Resource, error) {
	gets := make([]clientv3.Op, len(keys))
	for i, k := range keys {
		gets[i] = clientv3.OpGet(k)
	}
	for attempt := 0; attempt < applyAttempts; attempt++ {
		cur, err := c.cli.Txn(ctx).Then(gets...).Commit()
		if err != nil {
			return nil, txnError("reading current versions", len(keys), err)
		}
		cmps := make([]clientv3.Cmp, len(keys))
		puts := make([]clientv3.Op, len(keys))
		for i, k := range keys {
			var stored []byte
			var modRev int64
			if kvs := cur.Responses[i].GetResponseRange().Kvs; len(kvs) > 0 {
				stored, modRev = kvs[0].Value, kvs[0].ModRevision
			}
			keepIdentity(objs[i], stored)
			objs[i].GetObjectMeta().ResourceVersion = ""
			val, err := encode(objs[i])
			if err != nil {
				return nil, fmt.Errorf("encoding %s: %w", IDOf(objs[i]), err)
			}
			cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", modRev)
			puts[i] = clientv3.OpPut(k, string(val))
		}
		resp, err := c.cli.Txn(ctx).If(cmps...).Then(puts...).Commit()
		if err != nil {
			return nil, txnError("writing", len(keys), err)
		}
		if !resp.Succeeded {
			c.lg.Debug("apply raced with another writer, retrying", logKeyCount, len(keys))
			continue
		}
		rv := strconv.FormatInt(resp.Header.Revision, 10)
		for _, o := range objs {
			o.GetObjectMeta().ResourceVersion = rv
		}
		return objs, nil
	}
	return nil, fmt.Errorf("other writers kept changing the same resources (%d attempts): %w", applyAttempts, ErrConflict)
}

// txnError explains the limits etcd puts on one transaction.
func txnError(what string, n int, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%s: nothing written: %w: %d operations exceed the server's --max-txn-ops", what, ErrTooManyOps, n)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return fmt.Errorf("%s: nothing written: %d resources exceed the server's --max-request-bytes: %w", what, n, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
