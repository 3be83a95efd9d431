package datastore

// Log keys, defined once so that every message spells them the same way.
const (
	logKeyEndpoints = "endpoints"
	logKeyKey       = "key"
	logKeyKind      = "kind"
	logKeyPrefix    = "prefix"
	logKeyRevision  = "revision"
	logKeyLease     = "lease"
	logKeyError     = "error"
	logKeyCount     = "count"
	logKeyDataDir   = "dataDir"
	logKeyListen    = "listen"
	logKeyStatus    = "status"
	logKeyRetryIn   = "retryIn"
)
