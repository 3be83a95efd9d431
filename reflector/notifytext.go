package reflector

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// notificationCodes names NOTIFICATION error codes (RFC 4271 4.5).
var notificationCodes = map[uint8]string{
	bgp.BGP_ERROR_MESSAGE_HEADER_ERROR:        "message header error",
	bgp.BGP_ERROR_OPEN_MESSAGE_ERROR:          "OPEN message error",
	bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR:        "UPDATE message error",
	bgp.BGP_ERROR_HOLD_TIMER_EXPIRED:          "hold timer expired",
	bgp.BGP_ERROR_FSM_ERROR:                   "finite state machine error",
	bgp.BGP_ERROR_CEASE:                       "cease",
	bgp.BGP_ERROR_ROUTE_REFRESH_MESSAGE_ERROR: "ROUTE-REFRESH message error",
}

// ceaseSubcodes names Cease subcodes (RFC 4486, 8203, 8538).
var ceaseSubcodes = map[uint8]string{
	bgp.BGP_ERROR_SUB_MAXIMUM_NUMBER_OF_PREFIXES_REACHED: "maximum number of prefixes reached",
	bgp.BGP_ERROR_SUB_ADMINISTRATIVE_SHUTDOWN:            "administrative shutdown",
	bgp.BGP_ERROR_SUB_PEER_DECONFIGURED:                  "peer de-configured",
	bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET:               "administrative reset",
	bgp.BGP_ERROR_SUB_CONNECTION_REJECTED:                "connection rejected",
	bgp.BGP_ERROR_SUB_OTHER_CONFIGURATION_CHANGE:         "other configuration change",
	bgp.BGP_ERROR_SUB_CONNECTION_COLLISION_RESOLUTION:    "connection collision resolution",
	bgp.BGP_ERROR_SUB_OUT_OF_RESOURCES:                   "out of resources",
	bgp.BGP_ERROR_SUB_HARD_RESET:                         "hard reset",
}

// notificationText describes a NOTIFICATION's code and subcode.
func notificationText(code, subcode uint8) string {
	name, ok := notificationCodes[code]
	if !ok {
		name = "code " + strconv.Itoa(int(code))
	}
	if code == bgp.BGP_ERROR_CEASE {
		if s, ok := ceaseSubcodes[subcode]; ok {
			return name + ": " + s
		}
	}
	if subcode != 0 {
		return fmt.Sprintf("%s (subcode %d)", name, subcode)
	}
	return name
}

// endReason describes why a session ended for logs and metrics: the
// NOTIFICATION's direction, code and subcode if there was one.
type endReason struct {
	direction     string // "sent", "received" or "" (no NOTIFICATION)
	code, subcode uint8
	text          string
}

func reasonOf(err error) endReason {
	var ne *notifyError
	var rn *receivedNotification
	switch {
	case errors.As(err, &rn):
		return endReason{"received", rn.code, rn.subcode, notificationText(rn.code, rn.subcode)}
	case errors.As(err, &ne):
		t := notificationText(ne.code, ne.subcode)
		if ne.msg != "" {
			t += ": " + ne.msg
		}
		return endReason{"sent", ne.code, ne.subcode, t}
	case err == nil:
		return endReason{text: "closed"}
	}
	return endReason{text: err.Error()}
}
