package ipam

// Log keys, defined once so that every message spells them the same way.
const (
	logKeyNode     = "node"
	logKeyHandle   = "handle"
	logKeyBlock    = "block"
	logKeyIPs      = "ips"
	logKeyPool     = "pool"
	logKeyConflict = "conflicts"
	logKeyError    = "error"
)
