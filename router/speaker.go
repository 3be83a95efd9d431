package router

import "github.com/bgpfabric/bgpfabric/router/speaker"

// The speaker's interface and types live in router/speaker, which the
// speaker's own binary links without the router; the router knows them
// by these names.
type (
	Speaker         = speaker.Speaker
	Global          = speaker.Global
	ExportPolicy    = speaker.ExportPolicy
	PeerConfig      = speaker.PeerConfig
	PeerRangeConfig = speaker.PeerRangeConfig
	GracefulRestart = speaker.GracefulRestart
	LocalRoute      = speaker.LocalRoute
	Destination     = speaker.Destination
	Path            = speaker.Path
	PeerEvent       = speaker.PeerEvent
	PeerStatus      = speaker.PeerStatus
	SpeakerLoss     = speaker.SpeakerLoss
	LossWatcher     = speaker.LossWatcher
	PathWatcher     = speaker.PathWatcher
	Received        = speaker.Received
)

// The speaker-wide export rules (speaker.ExportPolicy).
const (
	ExportLocalOnly  = speaker.ExportLocalOnly
	ExportNoExternal = speaker.ExportNoExternal
	ExportAll        = speaker.ExportAll
)
