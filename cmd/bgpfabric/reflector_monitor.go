//go:build !nodeonly

package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/bgpfabric/bgpfabric/reflector"
)

// monitorOptions are the BMP and MRT flags of `bgpfabric reflector`: the
// way to configure them in datastore mode; with --config they add to the
// file's bmp and mrt blocks (flags win where both set a value).
type monitorOptions struct {
	bmpCollectors    []string
	bmpStatsInterval time.Duration
	bmpLocRIB        bool
	mrtDir           string
	mrtDumpInterval  time.Duration
	mrtKeep          int
	mrtUpdateLog     bool
}

func (o *monitorOptions) flags(f *pflag.FlagSet) {
	f.StringSliceVar(&o.bmpCollectors, "bmp-collector", nil, "BMP collector host:port to stream to (RFC 7854; repeatable)")
	f.DurationVar(&o.bmpStatsInterval, "bmp-stats-interval", 0, "period of BMP statistics reports (0: the file's, or 60s)")
	f.BoolVar(&o.bmpLocRIB, "bmp-loc-rib", false, "also monitor the Loc-RIB (RFC 9069): every prefix's best path")
	f.StringVar(&o.mrtDir, "mrt-dir", "", "directory for periodic MRT RIB snapshots and the MRT update log")
	f.DurationVar(&o.mrtDumpInterval, "mrt-dump-interval", 0, "period of MRT RIB snapshots into --mrt-dir (0: none)")
	f.IntVar(&o.mrtKeep, "mrt-keep", 0, "MRT files of each kind kept in --mrt-dir (0: the file's, or 24)")
	f.BoolVar(&o.mrtUpdateLog, "mrt-update-log", false, "log every received UPDATE as BGP4MP records into --mrt-dir")
}

// check validates the flags.
func (o *monitorOptions) check() error {
	for _, a := range o.bmpCollectors {
		if err := reflector.CheckCollectorAddress(a); err != nil {
			return fmt.Errorf("--bmp-collector: %w", err)
		}
	}
	switch {
	case o.bmpStatsInterval < 0:
		return fmt.Errorf("--bmp-stats-interval: must not be negative")
	case o.mrtDumpInterval < 0:
		return fmt.Errorf("--mrt-dump-interval: must not be negative")
	case o.mrtKeep < 0:
		return fmt.Errorf("--mrt-keep: must not be negative")
	}
	return nil
}

// apply adds the flags to the engine's configuration.
func (o *monitorOptions) apply(c *reflector.Config) {
	for _, a := range o.bmpCollectors {
		c.BMP.Collectors = append(c.BMP.Collectors, reflector.BMPCollector{Address: a})
	}
	if o.bmpStatsInterval > 0 {
		c.BMP.StatsInterval = o.bmpStatsInterval
	}
	c.BMP.LocRIB = c.BMP.LocRIB || o.bmpLocRIB
	if o.mrtDir != "" {
		c.MRT.Dir = o.mrtDir
	}
	if o.mrtDumpInterval > 0 {
		c.MRT.DumpInterval = o.mrtDumpInterval
	}
	if o.mrtKeep > 0 {
		c.MRT.Keep = o.mrtKeep
	}
	c.MRT.UpdateLog = c.MRT.UpdateLog || o.mrtUpdateLog
}

// serveMRTDump answers GET /mrt/dump on the control socket with a
// TABLE_DUMP_V2 snapshot of the RIB.
func serveMRTDump(eng engine) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rr := eng.Reflector()
		if rr == nil {
			http.Error(w, "the reflector is not configured yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="rib.mrt"`)
		if _, err := rr.WriteMRT(r.Context(), w); err != nil {
			// Nothing was written when the snapshot failed; a failed
			// write means the client went away.
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}
}
