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
)
