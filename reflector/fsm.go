package reflector

import (
	"errors"
	"fmt"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// State is an RFC 4271 session state.
type State int32

const (
	StateIdle State = iota
	StateConnect
	StateActive
	StateOpenSent
	StateOpenConfirm
	StateEstablished
)

func (s State) String() string {
	switch s {
	case StateIdle:
		return "Idle"
	case StateConnect:
		return "Connect"
	case StateActive:
		return "Active"
	case StateOpenSent:
		return "OpenSent"
	case StateOpenConfirm:
		return "OpenConfirm"
	case StateEstablished:
		return "Established"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// notifyError is an error we tell the peer about with a NOTIFICATION.
type notifyError struct {
	code, subcode uint8
	data          []byte
	msg           string
}

func (e *notifyError) Error() string {
	return fmt.Sprintf("sent notification %d/%d: %s", e.code, e.subcode, e.msg)
}

func newNotify(code, subcode uint8, msg string) *notifyError {
	return &notifyError{code: code, subcode: subcode, msg: msg}
}

// notifyFromMessageError turns a codec error into a NOTIFICATION.
func notifyFromMessageError(err error, defCode, defSub uint8) *notifyError {
	var me *bgp.MessageError
	if errors.As(err, &me) && me.TypeCode != 0 {
		return &notifyError{code: me.TypeCode, subcode: me.SubTypeCode, data: me.Data, msg: me.Message}
	}
	return &notifyError{code: defCode, subcode: defSub, msg: err.Error()}
}

// receivedNotification is a NOTIFICATION the peer sent us.
type receivedNotification struct {
	code, subcode uint8
	data          []byte
}

func (e *receivedNotification) Error() string {
	return fmt.Sprintf("received notification %d/%d", e.code, e.subcode)
}

// errNotSent wraps a failure that sent no NOTIFICATION (TCP error, EOF):
// for graceful restart these end a session gracefully.
var errConnLost = errors.New("connection lost")

func encodeNotification(e *notifyError) []byte {
	b, err := bgp.NewBGPNotificationMessage(e.code, e.subcode, e.data).Serialize()
	if err != nil || len(b) > maxMsgLen {
		b, _ = bgp.NewBGPNotificationMessage(e.code, e.subcode, nil).Serialize()
	}
	return b
}

var keepaliveMsg = func() []byte {
	b, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	return b
}()
