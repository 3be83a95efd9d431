package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Protocol is an IP protocol: a name (TCP, UDP, ICMP, ICMPv6, SCTP,
// UDPLite) or a number from 1 to 255. In JSON it is a string or a number;
// a number is kept as its decimal text, e.g. Protocol("6"). Anything that
// is a JSON string or number decodes, so that Validate can name a bad value
// with its field.
type Protocol string

// Protocols known by name.
const (
	ProtocolTCP     Protocol = "TCP"
	ProtocolUDP     Protocol = "UDP"
	ProtocolICMP    Protocol = "ICMP"
	ProtocolICMPv6  Protocol = "ICMPv6"
	ProtocolSCTP    Protocol = "SCTP"
	ProtocolUDPLite Protocol = "UDPLite"
)

var protocolNumbers = map[Protocol]uint8{
	ProtocolICMP: 1, ProtocolTCP: 6, ProtocolUDP: 17, ProtocolICMPv6: 58, ProtocolSCTP: 132, ProtocolUDPLite: 136,
}

// canonical returns the known name spelled as above, matching case-
// insensitively, or p unchanged.
func (p Protocol) canonical() Protocol {
	for name := range protocolNumbers {
		if strings.EqualFold(string(p), string(name)) {
			return name
		}
	}
	return p
}

// Number returns the protocol number, and false if p is neither a known
// name nor a number from 1 to 255.
func (p Protocol) Number() (uint8, bool) {
	if n, ok := protocolNumbers[p.canonical()]; ok {
		return n, true
	}
	n, err := strconv.ParseUint(string(p), 10, 8)
	if err != nil || n == 0 {
		return 0, false
	}
	return uint8(n), true
}

// HasPorts reports whether the protocol has ports: TCP, UDP, SCTP, UDPLite.
func (p Protocol) HasPorts() bool {
	n, _ := p.Number()
	return n == 6 || n == 17 || n == 132 || n == 136
}

// IsICMP returns 4 for ICMP, 6 for ICMPv6, and 0 for anything else.
func (p Protocol) IsICMP() int {
	switch n, _ := p.Number(); n {
	case 1:
		return 4
	case 58:
		return 6
	}
	return 0
}

// UnmarshalJSON accepts a string or a number.
func (p *Protocol) UnmarshalJSON(b []byte) error {
	s, err := numOrString(b, "protocol")
	if err == nil {
		*p = Protocol(s)
	}
	return err
}

// MarshalJSON writes a number as a number and anything else as a string.
func (p Protocol) MarshalJSON() ([]byte, error) { return marshalNumOrString(string(p)) }

// Port is a port to match: a number from 1 to 65535 ("80"), an inclusive
// range ("1000:2000") or the name of a port that endpoints declare
// ("http"). In JSON it is a number or a string; like Protocol, any JSON
// string or number decodes and Validate reports what is wrong with it.
type Port string

// PortNumber returns the Port for one port number.
func PortNumber(n uint16) Port { return Port(strconv.Itoa(int(n))) }

// PortRange returns the Port for the range lo..hi.
func PortRange(lo, hi uint16) Port {
	return Port(strconv.Itoa(int(lo)) + ":" + strconv.Itoa(int(hi)))
}

// svcNameRE is an IANA service name, which named ports are (RFC 6335):
// lower-case letters, digits and inner single dashes, with a letter.
var svcNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9]|-[a-z0-9])*$`)

// Range returns the numeric range of a number or range port; ok is false
// for a named port or a malformed one.
func (p Port) Range() (lo, hi uint16, ok bool) {
	a, b, isRange := strings.Cut(string(p), ":")
	l, err1 := strconv.ParseUint(a, 10, 16)
	h, err2 := l, error(nil)
	if isRange {
		h, err2 = strconv.ParseUint(b, 10, 16)
	}
	if err1 != nil || err2 != nil || l == 0 || l > h {
		return 0, 0, false
	}
	return uint16(l), uint16(h), true
}

// Name returns the port's name if it is a (well-formed) named port.
func (p Port) Name() (string, bool) {
	s := string(p)
	if len(s) > 15 || !svcNameRE.MatchString(s) || !strings.ContainsAny(s, "abcdefghijklmnopqrstuvwxyz") {
		return "", false
	}
	return s, true
}

// check returns why p is invalid, or "".
func (p Port) check() string {
	if _, _, ok := p.Range(); ok {
		return ""
	}
	if _, ok := p.Name(); ok {
		return ""
	}
	return "must be a port from 1 to 65535, a range such as \"1000:2000\" with low <= high, or a port name of at most 15 lower-case letters, digits and dashes"
}

// UnmarshalJSON accepts a string or a number.
func (p *Port) UnmarshalJSON(b []byte) error {
	s, err := numOrString(b, "port")
	if err == nil {
		*p = Port(s)
	}
	return err
}

// MarshalJSON writes a single port number as a number and anything else as
// a string.
func (p Port) MarshalJSON() ([]byte, error) { return marshalNumOrString(string(p)) }

// numOrString returns a JSON string's value or a JSON number's text.
func numOrString(b []byte, what string) (string, error) {
	if len(b) > 0 && b[0] == '"' {
		var s string
		err := json.Unmarshal(b, &s)
		return s, err
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return "", fmt.Errorf("%s must be a string or a number, not %s", what, b)
	}
	return string(n), nil
}

// marshalNumOrString writes s as a JSON number if it is the canonical
// decimal form of a non-negative integer, and as a JSON string otherwise.
func marshalNumOrString(s string) ([]byte, error) {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil && strconv.FormatUint(n, 10) == s {
		return []byte(s), nil
	}
	return json.Marshal(s)
}
