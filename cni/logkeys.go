package cni

// Log keys, defined once so that every message spells them the same way.
const (
	logKeyCommand   = "command"
	logKeyContainer = "container"
	logKeyIface     = "iface"
	logKeyWorkload  = "workload"
	logKeyIPs       = "ips"
	logKeyError     = "error"
	logKeyHandle    = "handle"
	logKeyLabels    = "labels"
)
