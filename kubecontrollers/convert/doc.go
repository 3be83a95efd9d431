// Package convert turns Kubernetes objects into bgpfabric resources, after
// Calico's conversion rules (calico-kube-controllers in etcd mode). It is
// pure: it reads k8s.io/api types and returns api resources, and it never
// talks to an API server or a datastore.
//
// # Label scheme
//
// A Kubernetes namespace becomes the Profile NamespaceProfilePrefix+name
// ("ns.<namespace>", the profile the CNI plugin names in every workload
// endpoint it creates). The profile allows everything in both directions,
// as Kubernetes does for a pod that no NetworkPolicy selects, and applies
// the namespace's labels to its endpoints, each key prefixed with
// NamespaceLabelPrefix ("pcns.", as Calico does): a namespace labelled
// team=a gives its pods the label pcns.team=a. A namespaceSelector of a
// NetworkPolicy becomes a selector over those prefixed labels. Pod labels
// with a reserved prefix (NamespaceLabelPrefix or bgpfabric.io/) are not
// copied onto endpoints, so that a pod cannot claim another namespace's
// labels, and a podSelector that names such a key is refused.
//
// # NetworkPolicy
//
// A Kubernetes NetworkPolicy ns/name becomes the bgpfabric NetworkPolicy
// ns/PolicyNamePrefix+name ("knp.default.<name>") with order PolicyOrder:
//   - spec.podSelector: the policy's selector, and only Kubernetes pods
//     (bgpfabric.io/orchestrator == 'k8s');
//   - policyTypes: the policy's types; unset, Ingress and, when there are
//     egress rules, Egress. Rules of a direction not in policyTypes have no
//     effect in Kubernetes and are left out. A direction with no rules
//     denies everything (default deny);
//   - each ingress (egress) rule: one Allow rule per peer and per protocol
//     of its ports; no peers is any source (destination), no ports any
//     port of any protocol;
//   - a podSelector peer: the pods of the policy's namespace it selects; a
//     namespaceSelector peer: the pods of the namespaces it selects (with a
//     podSelector beside it, those of them it selects); an ipBlock: its
//     cidr as nets and its except as notNets;
//   - ports: protocol (TCP when unset), number, name (a named port, which
//     felix resolves on the destination pods) or number to endPort.
//
// What bgpfabric cannot express exactly is refused with an *Error naming
// the field, never converted into something that allows more.
package convert
