// Package ipam hands out workload addresses with Calico's block-affinity
// model, on the datastore and with compare-and-swap for every change.
//
// # Model
//
// An IPPool is divided into blocks of its BlockSize (/26 and /122 by
// default). A block exists in the datastore (an IPAMBlock named
// api.BlockNameFor(cidr)) once some node has claimed it; the claim is a
// create that fails when the key exists, so two nodes can never claim the
// same block. The claiming node is the block's affinity ("host:<node>").
//
// AutoAssign allocates, for one node and one handle:
//
//  1. from the node's affine blocks (lowest CIDR first);
//  2. then from a block it claims now: the first free block of the pool,
//     counting from an offset derived from the node name so that nodes
//     claiming at the same time rarely want the same block; the claim and
//     the first allocations are one create;
//  3. then, when no pool has a free block left, by borrowing addresses from
//     another node's block (or a block without affinity), unless that block
//     has StrictAffinity;
//  4. else it fails with an *ExhaustedError naming the pools.
//
// Every block write is a compare-and-swap on the block's ResourceVersion.
// A lost race re-reads that block (or, for a claim, tries the next free
// block) and tries again; Config.MaxConflicts bounds how many races one call
// may lose before it gives up with ErrTooManyConflicts. If a call cannot
// allocate everything it was asked for, it releases what it did allocate
// before returning the error: an AutoAssign either succeeds or leaves the
// datastore as it found it.
//
// # Handles and attributes
//
// Every allocation carries an api.AllocationAttribute: the handle (the CNI
// plugin uses "<network>:<container ID>:<interface>") and secondary
// attributes (the AttrXxx keys: node, namespace, workload, endpoint,
// timestamp). There is no separate handle resource: the handle index lives
// in the blocks, and ReleaseByHandle scans them. Release by handle is exact
// (only that handle's addresses) and idempotent (releasing again releases
// nothing and succeeds).
//
// # Releasing blocks
//
// A block that becomes empty when addresses are released is deleted
// (compare-and-swap on the version that emptied it, so an allocation that
// comes in between wins) when no node wants it any more: it has no
// affinity, or its affine node no longer exists, or no enabled pool that
// selects that node contains it. An empty block that its node still wants
// stays claimed, as in Calico: the node reuses it for its next workload and
// its route aggregate stays stable. ReleaseNodeBlocks gives up every block
// of a node that has left (Calico's ReleaseHostAffinities): empty blocks
// are deleted and the others lose their affinity, so that they are deleted
// once their last address is released.
//
// # Layers
//
// block.go and pools.go are pure: allocation inside one block, the choice
// of pools and of a free block. The Client drives them against a Store
// (implemented by *datastore.Client), so the decisions are tested without
// etcd and the CAS loops against a real one.
package ipam
