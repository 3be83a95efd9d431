package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultBGPConfigurationName is the name of the global BGPConfiguration.
const DefaultBGPConfigurationName = "default"

// BGPConfiguration is the fabric's BGP settings. The one named "default"
// holds the global settings; one named "node.<node name>" overrides
// listenPort and logSeverity on that node only.
type BGPConfiguration struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       BGPConfigurationSpec `json:"spec"`
}

// BGPConfigurationSpec holds the settings. Timers are Go duration strings
// in whole seconds ("90s", "1m30s").
type BGPConfigurationSpec struct {
	// ASNumber is the AS of nodes that do not set their own (default 64512).
	ASNumber *uint32 `json:"asNumber,omitempty"`
	// NodeToNodeMeshEnabled peers every node with every other (default true).
	NodeToNodeMeshEnabled *bool `json:"nodeToNodeMeshEnabled,omitempty"`
	// ListenPort is the BGP port (default 179).
	ListenPort *int `json:"listenPort,omitempty"`
	// KeepaliveTime and HoldTime default to 30s and 90s; if only HoldTime
	// is set, KeepaliveTime defaults to a third of it. HoldTime is 0s or
	// 3s..65535s, KeepaliveTime below it (0s when HoldTime is 0s).
	KeepaliveTime Duration `json:"keepaliveTime,omitempty"`
	HoldTime      Duration `json:"holdTime,omitempty"`
	// GracefulRestart configures RFC 4724 graceful restart.
	GracefulRestart *GracefulRestart `json:"gracefulRestart,omitempty"`
	// Communities are standard ("65000:100", RFC 1997) or large
	// ("65000:1:2", RFC 8092) communities: an entry written as a plain
	// string is attached to every route the fabric exports; an entry
	// {name, value} (Calico's) only defines a name that
	// prefixAdvertisements refer to.
	Communities []CommunityEntry `json:"communities,omitempty"`
	// PrefixAdvertisements attach communities to the routes a node exports
	// whose prefix is inside a CIDR (Calico's): each community is a name
	// from communities or a literal. A route inside several CIDRs carries
	// the communities of all of them.
	PrefixAdvertisements []PrefixAdvertisement `json:"prefixAdvertisements,omitempty"`
	// ServiceClusterIPs are advertised whole by every node (Calico's).
	ServiceClusterIPs []ServiceIPBlock `json:"serviceClusterIPs,omitempty"`
	// ServiceExternalIPs and ServiceLoadBalancerIPs are ranges of service
	// addresses: a node advertises, as a host route (/32, /128), every
	// address inside them that is assigned to one of its interfaces (see
	// docs/policy.md); nodes with the same address give their peers ECMP.
	ServiceExternalIPs     []ServiceIPBlock `json:"serviceExternalIPs,omitempty"`
	ServiceLoadBalancerIPs []ServiceIPBlock `json:"serviceLoadBalancerIPs,omitempty"`
	// DrainTime is how long a node that is drained (Node spec.bgp.drain)
	// advertises its routes with the GRACEFUL_SHUTDOWN community (RFC
	// 8326) before it closes its sessions (default 15s, at most 3600s).
	DrainTime Duration `json:"drainTime,omitempty"`
	// LogSeverity is the log level of the node agents and reflectors:
	// Debug, Info (default), Warning, Error or Fatal (Calico's; taken as
	// Error). A node's "node.<name>" configuration overrides the global
	// one; it applies live.
	LogSeverity string `json:"logSeverity,omitempty"`
	// BFD is the default BFD setting of every BGP session (api/bfd.go);
	// a BGPPeer's bfd overrides it.
	BFD *BFD `json:"bfd,omitempty"`
	// EBGPDefaultPolicy is what an eBGP session of a node without a
	// BGPFilter that decides a route does with it: Reject (default, RFC
	// 8212: nothing accepted or sent without an explicit policy) or
	// Accept (bgpfabric's behaviour before BGPFilter). See docs/policy.md.
	EBGPDefaultPolicy string `json:"ebgpDefaultPolicy,omitempty"`
}

// GracefulRestart configures graceful restart.
type GracefulRestart struct {
	// Enabled defaults to true.
	Enabled *bool `json:"enabled,omitempty"`
	// RestartTime is what peers are told to wait for us (default 120s,
	// at most 4095s: it is a 12-bit field).
	RestartTime Duration `json:"restartTime,omitempty"`
	// StaleRoutesTime is how long we keep a restarting peer's routes
	// (default 360s).
	StaleRoutesTime Duration `json:"staleRoutesTime,omitempty"`
	// LongLivedStaleTime enables long-lived graceful restart (RFC 9494)
	// on nodes and reflectors when set: advertised to peers, which then
	// keep our routes as LLGR-stale for that long after the restart
	// time; we keep a peer's for the time it advertises (a reflector: at
	// most this). Whole seconds up to 16777215s; unset or 0s is off (the
	// RFC's default). See docs/reflector.md.
	LongLivedStaleTime Duration `json:"longLivedStaleTime,omitempty"`
}

// Defaults of the global BGPConfiguration.
const (
	DefaultASNumber        = 64512
	DefaultListenPort      = 179
	DefaultKeepaliveTime   = 30 * time.Second
	DefaultHoldTime        = 90 * time.Second
	DefaultRestartTime     = 120 * time.Second
	DefaultStaleRoutesTime = 360 * time.Second
	DefaultLogSeverity     = "Info"
	DefaultDrainTime       = 15 * time.Second
)

func init() {
	register(KindInfo{Kind: KindBGPConfiguration, Plural: "bgpconfigurations", Short: []string{"bgpconfig", "bgpconfigs"},
		New: func() Resource { return &BGPConfiguration{} }})
}

// GetTypeMeta implements Resource.
func (c *BGPConfiguration) GetTypeMeta() *TypeMeta { return &c.TypeMeta }

// GetObjectMeta implements Resource.
func (c *BGPConfiguration) GetObjectMeta() *ObjectMeta { return &c.ObjectMeta }

// DeepCopyResource implements Resource.
func (c *BGPConfiguration) DeepCopyResource() Resource { return deepCopy(c) }

// Default implements Resource. Only the global ("default") configuration
// gets defaults: what a per-node one leaves unset is inherited.
func (c *BGPConfiguration) Default() {
	setTypeMeta(&c.TypeMeta, KindBGPConfiguration)
	if c.Name != DefaultBGPConfigurationName {
		return
	}
	s := &c.Spec
	if s.ASNumber == nil {
		s.ASNumber = ptr(uint32(DefaultASNumber))
	}
	if s.NodeToNodeMeshEnabled == nil {
		s.NodeToNodeMeshEnabled = ptr(true)
	}
	if s.ListenPort == nil {
		s.ListenPort = ptr(DefaultListenPort)
	}
	switch {
	case s.HoldTime == "":
		s.HoldTime = DurationOf(DefaultHoldTime)
		if s.KeepaliveTime == "" {
			s.KeepaliveTime = DurationOf(DefaultKeepaliveTime)
		}
	case s.KeepaliveTime == "":
		if h, err := s.HoldTime.Parse(); err == nil {
			s.KeepaliveTime = DurationOf((h / 3).Truncate(time.Second))
		}
	}
	if s.GracefulRestart == nil {
		s.GracefulRestart = &GracefulRestart{}
	}
	gr := s.GracefulRestart
	if gr.Enabled == nil {
		gr.Enabled = ptr(true)
	}
	if gr.RestartTime == "" {
		gr.RestartTime = DurationOf(DefaultRestartTime)
	}
	if gr.StaleRoutesTime == "" {
		gr.StaleRoutesTime = DurationOf(DefaultStaleRoutesTime)
	}
	if s.LogSeverity == "" {
		s.LogSeverity = DefaultLogSeverity
	}
	if s.EBGPDefaultPolicy == "" {
		s.EBGPDefaultPolicy = FilterReject
	}
	if s.DrainTime == "" {
		s.DrainTime = DurationOf(DefaultDrainTime)
	}
}

// Validate implements Resource.
func (c *BGPConfiguration) Validate() error {
	var fe fieldErrors
	validateMeta(&fe, KindBGPConfiguration, c)
	s := &c.Spec
	if strings.HasPrefix(c.Name, "node.") {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"asNumber", s.ASNumber != nil}, {"nodeToNodeMeshEnabled", s.NodeToNodeMeshEnabled != nil},
			{"keepaliveTime", s.KeepaliveTime != ""}, {"holdTime", s.HoldTime != ""},
			{"gracefulRestart", s.GracefulRestart != nil}, {"communities", s.Communities != nil},
			{"bfd", s.BFD != nil},
			{"ebgpDefaultPolicy", s.EBGPDefaultPolicy != ""},
			{"prefixAdvertisements", s.PrefixAdvertisements != nil},
			{"serviceClusterIPs", s.ServiceClusterIPs != nil},
			{"serviceExternalIPs", s.ServiceExternalIPs != nil},
			{"serviceLoadBalancerIPs", s.ServiceLoadBalancerIPs != nil},
			{"drainTime", s.DrainTime != ""},
		} {
			if f.set {
				fe.add("spec."+f.name, nil, "may only be set in the global %q BGPConfiguration", DefaultBGPConfigurationName)
			}
		}
	} else if c.Name != DefaultBGPConfigurationName && c.Name != "" {
		fe.add("metadata.name", c.Name, "must be \"default\" or \"node.<node name>\"")
	}
	validateASN(&fe, "spec.asNumber", s.ASNumber)
	if s.ListenPort != nil && (*s.ListenPort < 1 || *s.ListenPort > 65535) {
		fe.add("spec.listenPort", *s.ListenPort, "must be from 1 to 65535")
	}
	validateBGPTimers(&fe, "spec.", s.KeepaliveTime, s.HoldTime)
	if gr := s.GracefulRestart; gr != nil {
		wholeSeconds(&fe, "spec.gracefulRestart.restartTime", gr.RestartTime, time.Second, 4095*time.Second)
		wholeSeconds(&fe, "spec.gracefulRestart.staleRoutesTime", gr.StaleRoutesTime, time.Second, 24*time.Hour)
		wholeSeconds(&fe, "spec.gracefulRestart.longLivedStaleTime", gr.LongLivedStaleTime, 0, 16777215*time.Second)
	}
	validateBFD(&fe, "spec.bfd", s.BFD)
	validateAdvertisements(&fe, s)
	wholeSeconds(&fe, "spec.drainTime", s.DrainTime, 0, time.Hour)
	switch s.EBGPDefaultPolicy {
	case "", FilterAccept, FilterReject:
	default:
		fe.add("spec.ebgpDefaultPolicy", s.EBGPDefaultPolicy, "must be Reject (RFC 8212) or Accept")
	}
	switch s.LogSeverity {
	case "", "Debug", "Info", "Warning", "Error", "Fatal":
	default:
		fe.add("spec.logSeverity", s.LogSeverity, "must be Debug, Info, Warning, Error or Fatal")
	}
	return fe.result(KindBGPConfiguration, c)
}

// Community is a BGP community. A standard community (RFC 1997) is
// ASN:Value of 16 bits each, with Large false and Local2 zero; a large
// community (RFC 8092) is GlobalAdmin:Local1:Local2 of 32 bits each.
type Community struct {
	Large                  bool
	Global, Local1, Local2 uint32
}

// ParseCommunity parses "65000:100" or "65000:1:2".
func ParseCommunity(s string) (Community, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 3 {
		return Community{}, fmt.Errorf("must be a standard community \"asn:value\" or a large community \"asn:value:value\"")
	}
	large := len(parts) == 3
	var v [3]uint32
	for i, p := range parts {
		bits := 16
		if large {
			bits = 32
		}
		n, err := strconv.ParseUint(p, 10, bits)
		if err != nil {
			return Community{}, fmt.Errorf("part %d must be a number from 0 to %d", i+1, uint64(1)<<bits-1)
		}
		v[i] = uint32(n)
	}
	return Community{Large: large, Global: v[0], Local1: v[1], Local2: v[2]}, nil
}

// String renders the community as ParseCommunity reads it.
func (c Community) String() string {
	if c.Large {
		return fmt.Sprintf("%d:%d:%d", c.Global, c.Local1, c.Local2)
	}
	return fmt.Sprintf("%d:%d", c.Global, c.Local1)
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
