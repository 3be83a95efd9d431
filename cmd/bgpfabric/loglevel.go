package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/datastore"
)

// The log level of `bgpfabric node` and `bgpfabric reflector --node`
// follows the logSeverity of the BGPConfigurations, live: the node's own
// ("node.<name>") when it sets one, else the global ("default") one. An
// explicit --log-level pins the level instead; without any
// BGPConfiguration the level stays --log-level's default (info).

// severityLevel maps a logSeverity to a slog level. Calico's Fatal is
// taken as Error: bgpfabric logs nothing above Error, and hiding errors is
// not what an operator asking for "fatal only" wants either.
func severityLevel(s string) (slog.Level, error) {
	switch s {
	case "Debug":
		return slog.LevelDebug, nil
	case "Info":
		return slog.LevelInfo, nil
	case "Warning":
		return slog.LevelWarn, nil
	case "Error", "Fatal":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("logSeverity %q: want Debug, Info, Warning, Error or Fatal", s)
}

// severityFollower is a datastore.SyncHandler of BGPConfigurations that
// sets level from them. The syncer calls it from one goroutine; mu guards
// against the test reading along.
type severityFollower struct {
	node  string
	level *slog.LevelVar
	base  slog.Level // with no logSeverity anywhere
	log   *slog.Logger
	// onChange, for tests, is called after every change of level.
	onChange func(slog.Level)

	mu   sync.Mutex
	sevs map[string]string // BGPConfiguration name -> logSeverity
}

func (f *severityFollower) OnStatus(datastore.SyncStatus) {}

func (f *severityFollower) OnSnapshot(s datastore.Snapshot) {
	f.mu.Lock()
	f.sevs = map[string]string{}
	for _, r := range s.Resources {
		f.setLocked(r)
	}
	f.mu.Unlock()
	f.apply()
}

func (f *severityFollower) OnUpdates(evs []datastore.Event) {
	f.mu.Lock()
	for _, ev := range evs {
		if ev.Type == datastore.Deleted || ev.Resource == nil {
			delete(f.sevs, ev.ID.Name)
			continue
		}
		f.setLocked(ev.Resource)
	}
	f.mu.Unlock()
	f.apply()
}

func (f *severityFollower) setLocked(r api.Resource) {
	if c, ok := r.(*api.BGPConfiguration); ok {
		f.sevs[c.Name] = c.Spec.LogSeverity
	}
}

// apply sets the level the configurations give.
func (f *severityFollower) apply() {
	f.mu.Lock()
	sev, from := f.sevs["node."+f.node], "node."+f.node
	if sev == "" {
		sev, from = f.sevs[api.DefaultBGPConfigurationName], api.DefaultBGPConfigurationName
	}
	f.mu.Unlock()
	lvl := f.base
	if sev != "" {
		l, err := severityLevel(sev)
		if err != nil { // written around validation: keep the level
			f.log.Warn("ignoring an invalid logSeverity", "bgpconfiguration", from, "err", err)
			return
		}
		lvl = l
	}
	if lvl == f.level.Level() {
		return
	}
	f.level.Set(lvl)
	f.log.Log(context.Background(), max(lvl, slog.LevelInfo), "log level changed", "level", lvl.String(), "bgpconfiguration", from, "logSeverity", sev)
	if f.onChange != nil {
		f.onChange(lvl)
	}
}

// followLogSeverity keeps g's level equal to the BGPConfigurations' until
// ctx ends. With --log-level given, it does nothing: the flag pins it.
func followLogSeverity(ctx context.Context, g *globalOptions, c *datastore.Client, node string, log *slog.Logger) error {
	if g.logLevelPinned {
		<-ctx.Done()
		return nil
	}
	f := &severityFollower{node: node, level: &g.level, base: g.level.Level(), log: log, onChange: g.onLevelChange}
	s, err := datastore.NewSyncer(c, datastore.SyncerConfig{Kinds: []string{api.KindBGPConfiguration}, Handler: f, Logger: log})
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
