package api

import (
	"fmt"
	"strings"
)

// EndpointPort is a named port that an endpoint declares, which rules can
// match by name.
type EndpointPort struct {
	// Name is an IANA service name: at most 15 lower-case letters, digits
	// and inner dashes, with a letter.
	Name string `json:"name"`
	// Protocol is TCP, UDP or SCTP.
	Protocol Protocol `json:"protocol"`
	// Port is 1..65535.
	Port int `json:"port"`
}

// validatePortList checks an endpoint's named ports; names must be unique
// per protocol.
func validatePortList(fe *fieldErrors, path string, ports []EndpointPort) {
	seen := map[string]bool{}
	for i, p := range ports {
		pp := fmt.Sprintf("%s[%d]", path, i)
		if _, ok := Port(p.Name).Name(); !ok {
			fe.add(pp+".name", p.Name, "must be at most 15 lower-case letters, digits and inner dashes, with a letter")
		}
		switch p.Protocol.canonical() {
		case ProtocolTCP, ProtocolUDP, ProtocolSCTP:
		default:
			fe.add(pp+".protocol", string(p.Protocol), "must be TCP, UDP or SCTP")
		}
		if p.Port < 1 || p.Port > 65535 {
			fe.add(pp+".port", p.Port, "must be from 1 to 65535")
		}
		key := string(p.Protocol.canonical()) + "/" + p.Name
		if seen[key] {
			fe.add(pp+".name", p.Name, "is declared twice for %s", p.Protocol)
		}
		seen[key] = true
	}
}

// defaultPortList canonicalizes protocol names.
func defaultPortList(ports []EndpointPort) {
	for i := range ports {
		ports[i].Protocol = ports[i].Protocol.canonical()
	}
}

// validateProfileNames checks a list of profile names.
func validateProfileNames(fe *fieldErrors, path string, names []string) {
	for i, n := range names {
		validateName(fe, fmt.Sprintf("%s[%d]", path, i), n)
	}
}

// checkIfName returns why s is not a valid Linux interface name, or "":
// 1 to 15 bytes, not "." or "..", without '/', ':' or white space.
func checkIfName(s string) string {
	switch {
	case s == "":
		return "is required"
	case len(s) > 15:
		return "must be at most 15 characters (a Linux interface name)"
	case s == "." || s == ".." || strings.ContainsAny(s, "/: \t\n\r\v\f") || strings.ContainsRune(s, 0):
		return "must be a Linux interface name: no '/', ':' or white space, and not \".\" or \"..\""
	}
	return ""
}
