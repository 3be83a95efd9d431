package api

import (
	"fmt"
	"time"
)

// Duration is a length of time in Go's duration syntax, e.g. "90s" or
// "1m30s". It is kept as written, so that a malformed value reaches
// Validate, which names the field, rather than failing the decode with no
// field at all. Use Get after validation.
type Duration string

// DurationOf returns the Duration that renders t.
func DurationOf(t time.Duration) Duration { return Duration(t.String()) }

// Parse returns the duration, or an error if it is malformed.
func (d Duration) Parse() (time.Duration, error) {
	t, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, fmt.Errorf("must be a duration such as \"90s\" or \"1m30s\"")
	}
	return t, nil
}

// Get returns the duration, or 0 if it is empty or malformed.
func (d Duration) Get() time.Duration {
	t, _ := d.Parse()
	return t
}

// wholeSeconds parses an optional duration that must be a whole number of
// seconds within [minimum, maximum]; ok is false if d is unset or wrong (and
// then the error has been recorded).
func wholeSeconds(fe *fieldErrors, path string, d Duration, minimum, maximum time.Duration) (time.Duration, bool) {
	if d == "" {
		return 0, false
	}
	t, err := d.Parse()
	switch {
	case err != nil:
		fe.add(path, string(d), "%v", err)
		return 0, false
	case t%time.Second != 0:
		fe.add(path, string(d), "must be a whole number of seconds")
		return 0, false
	case t < minimum || t > maximum:
		fe.add(path, string(d), "must be from %v to %v", minimum, maximum)
		return 0, false
	}
	return t, true
}

// maxHoldTime is the largest BGP hold time (a 16-bit count of seconds).
const maxHoldTime = 65535 * time.Second

// validateBGPTimers checks a keepalive and hold time pair under path.
// Either may be unset (inherited from elsewhere). The hold time is 0 (no
// keepalives) or at least 3s (RFC 4271); with a hold time of 0 the
// keepalive must be 0 too, otherwise it must be at least 1s and below the
// hold time.
func validateBGPTimers(fe *fieldErrors, path string, keepalive, hold Duration) {
	kp, hp := path+"keepaliveTime", path+"holdTime"
	h, hok := wholeSeconds(fe, hp, hold, 0, maxHoldTime)
	if hok && h > 0 && h < 3*time.Second {
		fe.add(hp, string(hold), "must be 0s or at least 3s")
		hok = false
	}
	k, kok := wholeSeconds(fe, kp, keepalive, 0, maxHoldTime)
	if !kok || !hok {
		return
	}
	switch {
	case h == 0 && k != 0:
		fe.add(kp, string(keepalive), "must be 0s when holdTime is 0s")
	case h > 0 && k == 0:
		fe.add(kp, string(keepalive), "must be at least 1s when holdTime is not 0s")
	case h > 0 && k >= h:
		fe.add(kp, string(keepalive), "must be less than holdTime (%v)", h)
	}
}
