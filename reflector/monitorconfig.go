package reflector

import (
	"fmt"
	"net"
	"strconv"
)

// FileBMP is the configuration file's bmp block (BMPConfig).
type FileBMP struct {
	Collectors []FileBMPCollector `json:"collectors"`
	// StatsInterval is the period of Statistics Reports (default "60s").
	StatsInterval string `json:"statsInterval,omitempty"`
	// SysName is the Initiation's sysName (default: the host name).
	SysName string `json:"sysName,omitempty"`
	// LocRIB adds Loc-RIB monitoring (RFC 9069).
	LocRIB bool `json:"locRIB,omitempty"`
}

// FileBMPCollector is one BMP station.
type FileBMPCollector struct {
	// Address is "host:port".
	Address string `json:"address"`
	// BufferBytes bounds the messages queued for it (default 16 MiB).
	BufferBytes int `json:"bufferBytes,omitempty"`
}

// FileMRT is the configuration file's mrt block (MRTConfig).
type FileMRT struct {
	Dir             string `json:"dir,omitempty"`
	DumpInterval    string `json:"dumpInterval,omitempty"`
	Keep            int    `json:"keep,omitempty"`
	UpdateLog       bool   `json:"updateLog,omitempty"`
	UpdateLogRotate string `json:"updateLogRotate,omitempty"`
	UpdateLogBuffer int    `json:"updateLogBuffer,omitempty"`
}

// CheckCollectorAddress checks a BMP collector's "host:port".
func CheckCollectorAddress(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("%q: the port must be 1 to 65535", s)
	}
	return nil
}

// bmp converts the bmp block.
func (fe *fieldErrs) bmp(b *FileBMP) BMPConfig {
	if b == nil {
		return BMPConfig{}
	}
	c := BMPConfig{StatsInterval: fe.duration("bmp.statsInterval", b.StatsInterval), SysName: b.SysName, LocRIB: b.LocRIB}
	if b.StatsInterval != "" && c.StatsInterval == 0 {
		fe.add("bmp.statsInterval", "must be more than 0")
	}
	seen := map[string]bool{}
	for i, col := range b.Collectors {
		f := fmt.Sprintf("bmp.collectors[%d]", i)
		if err := CheckCollectorAddress(col.Address); err != nil {
			fe.add(f+".address", "%v", err)
		} else if seen[col.Address] {
			fe.add(f+".address", "%q is configured twice", col.Address)
		}
		seen[col.Address] = true
		if col.BufferBytes < 0 {
			fe.add(f+".bufferBytes", "must not be negative")
		}
		c.Collectors = append(c.Collectors, BMPCollector{Address: col.Address, BufferBytes: col.BufferBytes})
	}
	return c
}

// mrt converts the mrt block.
func (fe *fieldErrs) mrt(m *FileMRT) MRTConfig {
	if m == nil {
		return MRTConfig{}
	}
	c := MRTConfig{
		Dir: m.Dir, DumpInterval: fe.duration("mrt.dumpInterval", m.DumpInterval), Keep: m.Keep,
		UpdateLog: m.UpdateLog, UpdateLogRotate: fe.duration("mrt.updateLogRotate", m.UpdateLogRotate),
		UpdateLogBuffer: m.UpdateLogBuffer,
	}
	if (c.DumpInterval > 0 || c.UpdateLog) && c.Dir == "" {
		fe.add("mrt.dir", "is required with dumpInterval or updateLog")
	}
	if c.DumpInterval > 0 && c.DumpInterval.Seconds() < 1 {
		fe.add("mrt.dumpInterval", "must be at least 1s")
	}
	if m.Keep < 0 {
		fe.add("mrt.keep", "must not be negative")
	}
	if m.UpdateLogBuffer < 0 {
		fe.add("mrt.updateLogBuffer", "must not be negative")
	}
	if m.UpdateLogRotate != "" && c.UpdateLogRotate == 0 {
		fe.add("mrt.updateLogRotate", "must be more than 0")
	}
	return c
}
