package peering

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bgpfabric/bgpfabric/api"
)

// config is the global BGPConfiguration with every default applied.
type config struct {
	as   uint32
	mesh bool
	port uint16
	// hold and keepalive are the resolved global timers.
	hold, keepalive time.Duration
	gr              GracefulRestart
	// bfd is BGPConfiguration's bfd over the defaults, enabled or not
	// (a BGPPeer may enable it and inherit the intervals).
	bfd BFD
}

func defaultConfig() config {
	return config{
		as:        api.DefaultASNumber,
		mesh:      true,
		port:      api.DefaultListenPort,
		hold:      api.DefaultHoldTime,
		keepalive: api.DefaultKeepaliveTime,
		gr: GracefulRestart{
			Enabled:         true,
			RestartTime:     api.DefaultRestartTime,
			StaleRoutesTime: api.DefaultStaleRoutesTime,
		},
		bfd: defaultBFD(),
	}
}

// parseConfigs reads the "default" BGPConfiguration (defaults for what it
// leaves unset, or all defaults without one) and the per-node listen ports
// of the "node.<name>" ones. Any invalid one (another name included) is an
// error.
func (m *Model) parseConfigs(cs []*api.BGPConfiguration) (config, map[string]uint16, error) {
	cfg := defaultConfig()
	ports := map[string]uint16{}
	var errs []error
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		nodeName, perNode := strings.CutPrefix(c.Name, "node.")
		switch {
		case perNode:
			if c.Spec.ListenPort != nil {
				ports[nodeName] = uint16(*c.Spec.ListenPort)
			}
		default: // Validate allows no other name
			var fixed string
			if cfg, fixed = globalConfig(&c.Spec); fixed != "" {
				m.warn(api.KindBGPConfiguration, c.Name, "%s", fixed)
			}
		}
	}
	return cfg, ports, errors.Join(errs...)
}

// globalConfig applies the defaults to a validated global spec; fixed
// says how inconsistent timers were repaired.
func globalConfig(s *api.BGPConfigurationSpec) (cfg config, fixed string) {
	cfg = defaultConfig()
	if s.ASNumber != nil {
		cfg.as = *s.ASNumber
	}
	if s.NodeToNodeMeshEnabled != nil {
		cfg.mesh = *s.NodeToNodeMeshEnabled
	}
	if s.ListenPort != nil {
		cfg.port = uint16(*s.ListenPort)
	}
	cfg.hold, cfg.keepalive, fixed = resolveTimers(cfg.hold, cfg.keepalive, s.HoldTime, s.KeepaliveTime)
	if gr := s.GracefulRestart; gr != nil {
		if gr.Enabled != nil {
			cfg.gr.Enabled = *gr.Enabled
		}
		if gr.RestartTime != "" {
			cfg.gr.RestartTime = gr.RestartTime.Get()
		}
		if gr.StaleRoutesTime != "" {
			cfg.gr.StaleRoutesTime = gr.StaleRoutesTime.Get()
		}
		if gr.LongLivedStaleTime != "" {
			cfg.gr.LongLivedStaleTime = gr.LongLivedStaleTime.Get()
		}
	}
	if !cfg.gr.Enabled {
		cfg.gr = GracefulRestart{}
	}
	cfg.bfd = resolveBFD(cfg.bfd, s.BFD)
	return cfg, fixed
}

// resolveTimers applies a (validated) hold/keepalive override on top of
// inherited values:
//   - the hold time is the override's, else the inherited one;
//   - the keepalive is the override's; else, if only the hold time is
//     overridden, a third of it; else the inherited one;
//   - with a hold time of 0 the keepalive is 0.
//
// If the result is inconsistent (a keepalive override not below the
// inherited hold time), the keepalive becomes a third of the hold time and
// fixed reports it.
func resolveTimers(hold, keepalive time.Duration, oHold, oKeepalive api.Duration) (h, k time.Duration, fixed string) {
	h, k = hold, keepalive
	if oHold != "" {
		h = oHold.Get()
		k = third(h)
	}
	if oKeepalive != "" {
		k = oKeepalive.Get()
	}
	switch {
	case h == 0:
		k = 0
	case k == 0 || k >= h:
		fixed = fmt.Sprintf("keepaliveTime %v is not below holdTime %v: using %v", k, h, third(h))
		k = third(h)
	}
	return h, k, fixed
}

// third is a third of a hold time in whole seconds, at least 1s (the
// RFC 4271 recommendation).
func third(h time.Duration) time.Duration {
	if h == 0 {
		return 0
	}
	return max((h / 3).Truncate(time.Second), time.Second)
}
