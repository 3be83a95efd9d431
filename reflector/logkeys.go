package reflector

// Log keys, defined once.
const (
	logKeyPeer     = "peer"
	logKeyState    = "state"
	logKeyErr      = "err"
	logKeyAddr     = "addr"
	logKeyCode     = "code"
	logKeySubcode  = "subcode"
	logKeyPrefixes = "prefixes"
	logKeyHandling = "handling"
	logKeyDir      = "direction"
	logKeyReason   = "reason"
	// logKeyNotification is whether a NOTIFICATION was sent or received.
	logKeyNotification = "notification"
	logKeyUptime       = "uptime"
	logKeyGraceful     = "graceful"
	logKeyRouterID     = "routerID"
	logKeyASN          = "asn"
	logKeyHold         = "hold"
	logKeyAddPath      = "addPath"
	logKeyPrefix       = "prefix"
	logKeyFIB          = "fib"
	logKeyConflicts    = "conflicts"
	logKeyCount        = "count"
	logKeyInterval     = "interval"
	logKeyHoldDown     = "holdDown"
	logKeyFilters      = "filters"
)
