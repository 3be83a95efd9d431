package felix

// Log keys, defined once.
const (
	logKeyNode     = "node"
	logKeyError    = "error"
	logKeyResource = "resource"
	logKeyRetryIn  = "retry_in"
	logKeyRoutes   = "routes"
	logKeyEvents   = "events"
	logKeyDuration = "duration"
)
