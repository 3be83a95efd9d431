// Package datastore is bgpfabric's access to etcd: an embedded etcd server
// for single-machine use (StartEmbedded), a typed client over api.Resource
// (New: get, list, create, compare-and-swap update, apply, delete, watch),
// status records kept alive by a lease (StatusWriter), and a Syncer that
// gives a component one consistent snapshot followed by ordered updates and
// survives disconnects and compaction.
//
// Keys follow api.Key: /bgpfabric/v1/<plural>/[<namespace>/]<name>. Values
// are the JSON of api.Encode; a resource's ResourceVersion is the etcd mod
// revision of its key and is never stored in the value. See
// docs/datastore.md for the full contract.
//
// The server side, StartEmbedded and StartProxy (etcd's server and its
// gRPC proxy), is left out of builds with the nodeonly tag: the node
// agent's own binary, bgpfabric-node, is a client only and does not carry
// the etcd server's code and start-up work (docs/scale.md, "Memory at
// rest").
package datastore
