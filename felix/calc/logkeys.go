package calc

// Log keys, defined once.
const (
	logKeyResource = "resource"
	logKeyPrefix   = "prefix"
)
