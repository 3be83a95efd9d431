package datastore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bgpfabric/bgpfabric/api"
)

// Get reads one resource. A missing one is an error wrapping ErrNotFound.
func (c *Client) Get(ctx context.Context, kind, namespace, name string) (api.Resource, error) {
	ki, key, err := lookupKey(kind, namespace, name)
	if err != nil {
		return nil, fmt.Errorf("getting resource: %w", err)
	}
	id := ResourceID{Kind: ki.Kind, Namespace: namespace, Name: name}
	resp, err := c.cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", id, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("getting %s: %w", id, ErrNotFound)
	}
	r, err := decodeKV(resp.Kvs[0])
	if err != nil {
		return nil, fmt.Errorf("getting %s: %w", id, err)
	}
	return r, nil
}

// List reads every resource of a kind, in one namespace or, when namespace
// is "", in all of them, as one consistent snapshot; it returns the etcd
// revision of that snapshot, from which a Watch can continue. Kind "" lists
// every kind.
//
// Values that do not decode do not hide the others: List returns every
// resource that decodes together with an error joining one *DecodeError per
// bad key.
func (c *Client) List(ctx context.Context, kind, namespace string) ([]api.Resource, int64, error) {
	prefix, err := prefixFor(kind, namespace)
	if err != nil {
		return nil, 0, fmt.Errorf("listing: %w", err)
	}
	res, err := c.listPrefix(ctx, prefix, 0)
	if err != nil {
		return nil, 0, err
	}
	var errs []error
	for _, de := range res.bad {
		errs = append(errs, de)
	}
	if len(errs) > 0 {
		return res.resources, res.revision, fmt.Errorf("listing %s: %w", prefix, errors.Join(errs...))
	}
	return res.resources, res.revision, nil
}

// Create stores a new resource after defaulting and validating it. It
// fails with ErrAlreadyExists if the key is taken. The datastore assigns
// the UID and creation timestamp; the returned copy carries them and the
// new ResourceVersion.
func (c *Client) Create(ctx context.Context, r api.Resource) (api.Resource, error) {
	obj, key, err := prepare(r)
	if err != nil {
		return nil, fmt.Errorf("creating resource: %w", err)
	}
	id := IDOf(obj)
	m := obj.GetObjectMeta()
	m.UID, m.CreationTimestamp, m.ResourceVersion = newUID(), now(), ""
	val, err := encode(obj)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", id, err)
	}
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", id, err)
	}
	if !resp.Succeeded {
		return nil, fmt.Errorf("creating %s: %w", id, ErrAlreadyExists)
	}
	m.ResourceVersion = strconv.FormatInt(resp.Header.Revision, 10)
	return obj, nil
}

// Update replaces a resource if, and only if, it is still at the
// ResourceVersion that r carries (compare-and-swap): a stale version fails
// with ErrConflict, a deleted resource with ErrNotFound. UID and creation
// timestamp are kept from the stored resource.
func (c *Client) Update(ctx context.Context, r api.Resource) (api.Resource, error) {
	obj, key, err := prepare(r)
	if err != nil {
		return nil, fmt.Errorf("updating resource: %w", err)
	}
	id := IDOf(obj)
	m := obj.GetObjectMeta()
	rev, err := parseRevision(m.ResourceVersion)
	if err != nil {
		return nil, fmt.Errorf("updating %s: %w (Update needs the version that was read; Apply overwrites without one)", id, err)
	}
	cur, err := c.cli.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("updating %s: %w", id, err)
	}
	if len(cur.Kvs) == 0 {
		return nil, fmt.Errorf("updating %s: %w", id, ErrNotFound)
	}
	if got := cur.Kvs[0].ModRevision; got != rev {
		return nil, fmt.Errorf("updating %s at resourceVersion %d (stored is %d): %w", id, rev, got, ErrConflict)
	}
	keepIdentity(obj, cur.Kvs[0].Value)
	m.ResourceVersion = ""
	val, err := encode(obj)
	if err != nil {
		return nil, fmt.Errorf("updating %s: %w", id, err)
	}
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpPut(key, string(val))).
		Else(clientv3.OpGet(key, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("updating %s: %w", id, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return nil, fmt.Errorf("updating %s: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("updating %s at resourceVersion %d: %w", id, rev, ErrConflict)
	}
	m.ResourceVersion = strconv.FormatInt(resp.Header.Revision, 10)
	return obj, nil
}

// Delete removes a resource. With resourceVersion "" it deletes whatever
// is stored; otherwise only that version (ErrConflict if it changed). A
// missing resource is ErrNotFound.
func (c *Client) Delete(ctx context.Context, kind, namespace, name, resourceVersion string) error {
	ki, key, err := lookupKey(kind, namespace, name)
	if err != nil {
		return fmt.Errorf("deleting resource: %w", err)
	}
	id := ResourceID{Kind: ki.Kind, Namespace: namespace, Name: name}
	if resourceVersion == "" {
		resp, err := c.cli.Delete(ctx, key)
		if err != nil {
			return fmt.Errorf("deleting %s: %w", id, err)
		}
		if resp.Deleted == 0 {
			return fmt.Errorf("deleting %s: %w", id, ErrNotFound)
		}
		return nil
	}
	rev, err := parseRevision(resourceVersion)
	if err != nil {
		return fmt.Errorf("deleting %s: %w", id, err)
	}
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key, clientv3.WithCountOnly())).
		Commit()
	if err != nil {
		return fmt.Errorf("deleting %s: %w", id, err)
	}
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().Count == 0 {
			return fmt.Errorf("deleting %s: %w", id, ErrNotFound)
		}
		return fmt.Errorf("deleting %s at resourceVersion %d: %w", id, rev, ErrConflict)
	}
	return nil
}

// keepIdentity copies UID and creation timestamp from the stored value
// into obj, or assigns fresh ones if there is no stored value, it has none,
// or it does not decode (then it is overwritten as a new object). Whatever
// the caller put there is ignored: identity belongs to the datastore.
func keepIdentity(obj api.Resource, stored []byte) {
	m := obj.GetObjectMeta()
	m.UID, m.CreationTimestamp = "", ""
	var old struct {
		Metadata struct {
			UID               string `json:"uid"`
			CreationTimestamp string `json:"creationTimestamp"`
		} `json:"metadata"`
	}
	if len(stored) > 0 && json.Unmarshal(stored, &old) == nil {
		m.UID, m.CreationTimestamp = old.Metadata.UID, old.Metadata.CreationTimestamp
	}
	if m.UID == "" {
		m.UID = newUID()
	}
	if m.CreationTimestamp == "" {
		m.CreationTimestamp = now()
	}
}
