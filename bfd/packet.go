package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Version is the only BFD protocol version (RFC 5880 §4.1).
const Version = 1

// Length of a control packet without an authentication section.
const packetLen = 24

// State is a session state (RFC 5880 §4.1, "Sta").
type State uint8

// Session states, with their wire values.
const (
	StateAdminDown State = 0
	StateDown      State = 1
	StateInit      State = 2
	StateUp        State = 3
)

func (s State) String() string {
	switch s {
	case StateAdminDown:
		return "AdminDown"
	case StateDown:
		return "Down"
	case StateInit:
		return "Init"
	case StateUp:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a diagnostic code (RFC 5880 §4.1): why a session last left Up.
type Diag uint8

// Diagnostic codes, with their wire values.
const (
	DiagNone                  Diag = 0
	DiagControlDetectExpired  Diag = 1
	DiagEchoFailed            Diag = 2
	DiagNeighborSignaledDown  Diag = 3
	DiagForwardingPlaneReset  Diag = 4
	DiagPathDown              Diag = 5
	DiagConcatenatedPathDown  Diag = 6
	DiagAdministrativelyDown  Diag = 7
	DiagReverseConcatPathDown Diag = 8
)

var diagNames = [...]string{
	"No Diagnostic",
	"Control Detection Time Expired",
	"Echo Function Failed",
	"Neighbor Signaled Session Down",
	"Forwarding Plane Reset",
	"Path Down",
	"Concatenated Path Down",
	"Administratively Down",
	"Reverse Concatenated Path Down",
}

func (d Diag) String() string {
	if int(d) < len(diagNames) {
		return diagNames[d]
	}
	return fmt.Sprintf("Diag(%d)", uint8(d))
}

// ControlPacket is a BFD control packet (RFC 5880 §4.1) without an
// authentication section: this package implements no authentication, so it
// never sends one and discards every packet with the A bit set (§6.8.6: "If
// the A bit is set and no authentication is in use ... the packet MUST be
// discarded").
type ControlPacket struct {
	Diag  Diag
	State State
	// Poll, Final, ControlPlaneIndependent, Demand: the P, F, C and D bits.
	Poll                    bool
	Final                   bool
	ControlPlaneIndependent bool
	Demand                  bool
	DetectMult              uint8
	MyDiscriminator         uint32
	YourDiscriminator       uint32
	// Intervals in microseconds, as on the wire.
	DesiredMinTxInterval   uint32
	RequiredMinRxInterval  uint32
	RequiredMinEchoRxIntvl uint32
}

const (
	flagPoll      = 0x20
	flagFinal     = 0x10
	flagCPI       = 0x08
	flagAuth      = 0x04
	flagDemand    = 0x02
	flagMultipont = 0x01
)

// Append appends the packet's wire form to b.
func (p *ControlPacket) Append(b []byte) []byte {
	flags := byte(p.State&3) << 6
	if p.Poll {
		flags |= flagPoll
	}
	if p.Final {
		flags |= flagFinal
	}
	if p.ControlPlaneIndependent {
		flags |= flagCPI
	}
	if p.Demand {
		flags |= flagDemand
	}
	b = append(b, Version<<5|byte(p.Diag&0x1f), flags, p.DetectMult, packetLen)
	b = binary.BigEndian.AppendUint32(b, p.MyDiscriminator)
	b = binary.BigEndian.AppendUint32(b, p.YourDiscriminator)
	b = binary.BigEndian.AppendUint32(b, p.DesiredMinTxInterval)
	b = binary.BigEndian.AppendUint32(b, p.RequiredMinRxInterval)
	return binary.BigEndian.AppendUint32(b, p.RequiredMinEchoRxIntvl)
}

// Errors of Parse: every reason RFC 5880 §6.8.6 gives to discard a packet
// that can be judged without a session.
var (
	ErrShort        = errors.New("shorter than a control packet")
	ErrVersion      = errors.New("version is not 1")
	ErrLength       = errors.New("length field below 24 or beyond the payload")
	ErrDetectMult   = errors.New("detect mult is zero")
	ErrMultipoint   = errors.New("multipoint bit set")
	ErrMyDiscr      = errors.New("my discriminator is zero")
	ErrYourDiscr    = errors.New("your discriminator is zero in state Init or Up")
	ErrAuth         = errors.New("authentication bit set (authentication is not implemented)")
	ErrPollAndFinal = errors.New("poll and final bits both set")
)

// Parse decodes and validates a control packet received as the payload b
// of a UDP datagram. It applies every check of RFC 5880 §6.8.6 that needs
// no session: version, length (at least 24, at most len(b)), detect mult
// not zero, multipoint clear, my discriminator not zero, your
// discriminator not zero unless the state is Down or AdminDown, and the A
// bit clear. It also refuses P and F together (§6.5: "A BFD Control packet
// MUST NOT have both the Poll (P) and Final (F) bits set"). Bytes past the
// length field are ignored.
func Parse(b []byte) (ControlPacket, error) {
	var p ControlPacket
	if len(b) < packetLen {
		return p, ErrShort
	}
	if b[0]>>5 != Version {
		return p, ErrVersion
	}
	flags := b[1]
	if flags&flagAuth != 0 {
		// Checked before the length: with A set the minimum is 26, and we
		// discard such packets whatever their length.
		return p, ErrAuth
	}
	if l := int(b[3]); l < packetLen || l > len(b) {
		return p, ErrLength
	}
	if b[2] == 0 {
		return p, ErrDetectMult
	}
	if flags&flagMultipont != 0 {
		return p, ErrMultipoint
	}
	p = ControlPacket{
		Diag:                    Diag(b[0] & 0x1f),
		State:                   State(flags >> 6),
		Poll:                    flags&flagPoll != 0,
		Final:                   flags&flagFinal != 0,
		ControlPlaneIndependent: flags&flagCPI != 0,
		Demand:                  flags&flagDemand != 0,
		DetectMult:              b[2],
		MyDiscriminator:         binary.BigEndian.Uint32(b[4:]),
		YourDiscriminator:       binary.BigEndian.Uint32(b[8:]),
		DesiredMinTxInterval:    binary.BigEndian.Uint32(b[12:]),
		RequiredMinRxInterval:   binary.BigEndian.Uint32(b[16:]),
		RequiredMinEchoRxIntvl:  binary.BigEndian.Uint32(b[20:]),
	}
	if p.MyDiscriminator == 0 {
		return ControlPacket{}, ErrMyDiscr
	}
	if p.YourDiscriminator == 0 && p.State != StateDown && p.State != StateAdminDown {
		return ControlPacket{}, ErrYourDiscr
	}
	if p.Poll && p.Final {
		return ControlPacket{}, ErrPollAndFinal
	}
	return p, nil
}

// micros converts a wire interval to a duration.
func micros(us uint32) time.Duration { return time.Duration(us) * time.Microsecond }

// toMicros converts a duration to a wire interval, saturating.
func toMicros(d time.Duration) uint32 {
	us := d / time.Microsecond
	if us > 0xffffffff {
		return 0xffffffff
	}
	if us < 0 {
		return 0
	}
	return uint32(us)
}
