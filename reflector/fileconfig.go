package reflector

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/bgpfabric/bgpfabric/api"
)

// FileConfig is the reflector's configuration file (YAML or JSON), for a
// dedicated reflector that runs without the datastore. It is converted to
// a Config by Load; docs/reflector.md is its reference.
type FileConfig struct {
	RouterID  string `json:"routerID"`
	ASNumber  uint32 `json:"asNumber"`
	ClusterID string `json:"clusterID,omitempty"`
	// Listen are "host:port" addresses; empty means "0.0.0.0:179".
	Listen            []string              `json:"listen,omitempty"`
	ConnectRetry      string                `json:"connectRetry,omitempty"`
	SelectionDeferral string                `json:"selectionDeferral,omitempty"`
	Neighbors         []FileNeighbor        `json:"neighbors,omitempty"`
	DynamicNeighbors  []FileDynamicNeighbor `json:"dynamicNeighbors,omitempty"`
	// ProgramFIB installs the best paths into the kernel; FIB tunes it
	// (also for `bgpfabric reflector --program-fib`).
	ProgramFIB bool     `json:"programFIB,omitempty"`
	FIB        *FileFIB `json:"fib,omitempty"`
	// Filters are route policies (BGPFilter specs, docs/policy.md) that
	// neighbours and ranges name in their filters.
	Filters []FileFilter `json:"filters,omitempty"`
	// EBGPDefaultPolicy is what eBGP sessions do with routes no filter
	// decides: Reject (the default, RFC 8212: nothing in or out without
	// a filter) or Accept.
	EBGPDefaultPolicy string `json:"ebgpDefaultPolicy,omitempty"`
	// BMP exports to BMP collectors; MRT writes RIB snapshots and the
	// update log (monitorconfig.go, docs/reflector.md).
	BMP *FileBMP `json:"bmp,omitempty"`
	MRT *FileMRT `json:"mrt,omitempty"`
}

// FileFilter is a named BGPFilter spec: exportV4, importV4, exportV6,
// importV6, and the VPN and EVPN lists (exportEVPN, importVPNv4, ...).
type FileFilter struct {
	Name              string `json:"name"`
	api.BGPFilterSpec `json:",inline"`
}

// FileFIB configures the kernel routes of programFIB.
type FileFIB struct {
	// Protocol defaults to 81 (the node agent's router's).
	Protocol uint8 `json:"protocol,omitempty"`
	// Table defaults to the main table (254).
	Table uint32 `json:"table,omitempty"`
	// Multipath (default true) installs equal paths as one ECMP route.
	Multipath *bool `json:"multipath,omitempty"`
}

// FileTTL are a neighbour's TTL settings (see NeighborConfig).
type FileTTL struct {
	// TTLSecurity is the GTSM hop count, 1 to 255.
	TTLSecurity int `json:"ttlSecurity,omitempty"`
	// EBGPMultihop is the TTL towards an eBGP neighbour, 1 to 255
	// (default 1).
	EBGPMultihop int `json:"ebgpMultihop,omitempty"`
	// KeepOriginalNextHop sends routes to an eBGP neighbour with their
	// next hop unchanged.
	KeepOriginalNextHop bool `json:"keepOriginalNextHop,omitempty"`
}

// FileNeighbor is one configured neighbour.
type FileNeighbor struct {
	Address      string `json:"address"`
	Port         uint16 `json:"port,omitempty"`
	LocalAddress string `json:"localAddress,omitempty"`
	// ASNumber defaults to the reflector's (iBGP).
	ASNumber uint32 `json:"asNumber,omitempty"`
	// Client defaults to true for iBGP neighbours, and must not be set
	// for eBGP ones.
	Client        *bool  `json:"client,omitempty"`
	Passive       bool   `json:"passive,omitempty"`
	HoldTime      string `json:"holdTime,omitempty"`
	KeepaliveTime string `json:"keepaliveTime,omitempty"`
	MaxPrefixes   int    `json:"maxPrefixes,omitempty"`
	// Password or PasswordFile (whose content, without a trailing newline,
	// is the password) enable TCP MD5.
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	AddPath      bool   `json:"addPath,omitempty"`
	// GracefulRestart defaults to true.
	GracefulRestart *bool `json:"gracefulRestart,omitempty"`
	FileRestart     `json:",inline"`
	FileTTL         `json:",inline"`
	// BFD runs BFD beside the session (reflector/bfd.go); not available
	// for dynamic neighbours.
	BFD *FileBFD `json:"bfd,omitempty"`
	// Filters names the filters of the session, in order.
	Filters []string `json:"filters,omitempty"`
	// Families are the address families offered (reflector.FamilyNames);
	// empty means ipv4-unicast and ipv6-unicast.
	Families []string `json:"families,omitempty"`
	// Description is free text shown by `bgpfabric reflector show`.
	Description string `json:"description,omitempty"`
}

// FileDynamicNeighbor accepts passive sessions from a prefix.
type FileDynamicNeighbor struct {
	Prefix          string `json:"prefix"`
	ASNumber        uint32 `json:"asNumber,omitempty"`
	Client          *bool  `json:"client,omitempty"`
	HoldTime        string `json:"holdTime,omitempty"`
	KeepaliveTime   string `json:"keepaliveTime,omitempty"`
	MaxPrefixes     int    `json:"maxPrefixes,omitempty"`
	AddPath         bool   `json:"addPath,omitempty"`
	GracefulRestart *bool  `json:"gracefulRestart,omitempty"`
	FileRestart     `json:",inline"`
	// Password or PasswordFile enable TCP MD5 for the whole range.
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	FileTTL      `json:",inline"`
	// Filters names the filters of the range's sessions, in order.
	Filters []string `json:"filters,omitempty"`
	// Families as for a neighbour.
	Families []string `json:"families,omitempty"`
}

// LoadConfigFile reads, validates and converts a configuration file.
func LoadConfigFile(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	cfg, err := ParseConfigFile(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfigFile decodes a configuration (unknown fields are errors) and
// converts it. Errors name the field, e.g. "neighbors[2].holdTime".
func ParseConfigFile(b []byte) (Config, error) {
	var fc FileConfig
	if err := yaml.UnmarshalStrict(b, &fc); err != nil {
		return Config{}, err
	}
	return fc.Config()
}

// fieldErrs collects errors that name their field.
type fieldErrs []error

func (fe *fieldErrs) add(field, format string, args ...any) {
	*fe = append(*fe, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
}

func (fe *fieldErrs) addr(field, s string, required bool) netip.Addr {
	if s == "" {
		if required {
			fe.add(field, "is required")
		}
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		fe.add(field, "%q is not an IP address", s)
	}
	return a
}

func (fe *fieldErrs) duration(field, s string) time.Duration {
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		fe.add(field, "%q is not a duration such as \"90s\"", s)
	}
	return d
}

// holdTime maps a file hold time: "0s" means no hold time.
func (fe *fieldErrs) holdTime(field, s string) time.Duration {
	d := fe.duration(field, s)
	if s != "" && d == 0 {
		return NoHoldTime
	}
	if d > 0 && (d < 3*time.Second || d > 65535*time.Second) {
		fe.add(field, "must be 0 or from 3s to 65535s")
	}
	return d
}

// families parses a list of family names.
func (fe *fieldErrs) families(field string, names []string) FamilySet {
	s, i, err := parseFamilies(names)
	if err != nil {
		fe.add(fmt.Sprintf("%s[%d]", field, i), "%v", err)
	}
	return s
}

func orTrue(b *bool) bool { return b == nil || *b }

// ttl checks and converts a neighbour's TTL settings.
func (fe *fieldErrs) ttl(f string, t FileTTL) (ttlSecurity, multihop uint8) {
	for _, v := range []struct {
		name string
		v    int
	}{{"ttlSecurity", t.TTLSecurity}, {"ebgpMultihop", t.EBGPMultihop}} {
		if v.v < 0 || v.v > 255 {
			fe.add(f+"."+v.name, "must be from 1 to 255")
		}
	}
	if t.TTLSecurity != 0 && t.EBGPMultihop != 0 {
		fe.add(f+".ebgpMultihop", "must not be set with ttlSecurity")
	}
	return uint8(t.TTLSecurity), uint8(t.EBGPMultihop)
}

// password returns the password or the content of the password file.
func (fe *fieldErrs) password(f, pw, file string) string {
	if file == "" {
		return pw
	}
	if pw != "" {
		fe.add(f+".passwordFile", "set either password or passwordFile")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		fe.add(f+".passwordFile", "%v", err)
	}
	return strings.TrimRight(string(b), "\r\n")
}

// Config converts the file to the engine's Config (without a Logger).
func (fc *FileConfig) Config() (Config, error) {
	var fe fieldErrs
	c := Config{
		RouterID:          fe.addr("routerID", fc.RouterID, true),
		ASN:               fc.ASNumber,
		ClusterID:         fe.addr("clusterID", fc.ClusterID, false),
		ListenAddrs:       fc.Listen,
		ConnectRetry:      fe.duration("connectRetry", fc.ConnectRetry),
		SelectionDeferral: fe.duration("selectionDeferral", fc.SelectionDeferral),
	}
	if c.RouterID.IsValid() && !c.RouterID.Is4() {
		fe.add("routerID", "%v is not an IPv4 address", c.RouterID)
	}
	if c.ClusterID.IsValid() && !c.ClusterID.Is4() {
		fe.add("clusterID", "%v is not an IPv4 address", c.ClusterID)
	}
	if fc.ASNumber == 0 {
		fe.add("asNumber", "is required")
	}
	if len(c.ListenAddrs) == 0 {
		c.ListenAddrs = []string{"0.0.0.0:179"}
	}
	c.Policy = fe.policy(fc)
	for i, n := range fc.Neighbors {
		f := fmt.Sprintf("neighbors[%d]", i)
		nc := NeighborConfig{
			Address:         fe.addr(f+".address", n.Address, true),
			Port:            n.Port,
			LocalAddress:    fe.addr(f+".localAddress", n.LocalAddress, false),
			ASN:             n.ASNumber,
			Passive:         n.Passive,
			HoldTime:        fe.holdTime(f+".holdTime", n.HoldTime),
			KeepaliveTime:   fe.duration(f+".keepaliveTime", n.KeepaliveTime),
			MaxPrefixes:     n.MaxPrefixes,
			Password:        fe.password(f, n.Password, n.PasswordFile),
			AddPath:         n.AddPath,
			GracefulRestart: orTrue(n.GracefulRestart),
			KeepNextHop:     n.KeepOriginalNextHop,
			Families:        fe.families(f+".families", n.Families),
			Description:     n.Description,
		}
		nc.TTLSecurity, nc.EBGPMultihop = fe.ttl(f, n.FileTTL)
		nc.RestartTime, nc.LongLivedStaleTime = fe.restart(f, n.FileRestart, nc.GracefulRestart)
		nc.BFD = fe.bfd(f+".bfd", n.BFD, nc.LocalAddress)
		if nc.ASN == 0 {
			nc.ASN = fc.ASNumber
		}
		ibgp := nc.ASN == fc.ASNumber
		nc.Client = ibgp && orTrue(n.Client)
		if !ibgp && n.Client != nil && *n.Client {
			fe.add(f+".client", "an eBGP neighbour (asNumber %d) cannot be a route-reflector client", nc.ASN)
		}
		if n.MaxPrefixes < 0 {
			fe.add(f+".maxPrefixes", "must not be negative")
		}
		if fe.filterNames(f+".filters", n.Filters, c.Policy) && nc.Address.IsValid() {
			c.Policy.Neighbors[nc.Address] = n.Filters
		}
		c.Neighbors = append(c.Neighbors, nc)
	}
	for i, d := range fc.DynamicNeighbors {
		f := fmt.Sprintf("dynamicNeighbors[%d]", i)
		p, err := netip.ParsePrefix(d.Prefix)
		if err != nil {
			fe.add(f+".prefix", "%q is not a prefix such as 10.0.0.0/16", d.Prefix)
		}
		dn := DynamicNeighbor{
			Prefix: p, ASN: d.ASNumber, HoldTime: fe.holdTime(f+".holdTime", d.HoldTime),
			KeepaliveTime: fe.duration(f+".keepaliveTime", d.KeepaliveTime),
			MaxPrefixes:   d.MaxPrefixes, AddPath: d.AddPath, GracefulRestart: orTrue(d.GracefulRestart),
			Password: fe.password(f, d.Password, d.PasswordFile), KeepNextHop: d.KeepOriginalNextHop,
			Families: fe.families(f+".families", d.Families),
		}
		dn.TTLSecurity, dn.EBGPMultihop = fe.ttl(f, d.FileTTL)
		dn.RestartTime, dn.LongLivedStaleTime = fe.restart(f, d.FileRestart, dn.GracefulRestart)
		if dn.ASN == 0 {
			dn.ASN = fc.ASNumber
		}
		dn.Client = dn.ASN == fc.ASNumber && orTrue(d.Client)
		if fe.filterNames(f+".filters", d.Filters, c.Policy) && err == nil {
			p = p.Masked()
			if _, dup := c.Policy.Ranges[p]; dup {
				fe.add(f+".filters", "prefix %v has filters in an earlier range too", p)
			}
			c.Policy.Ranges[p] = d.Filters
		}
		c.DynamicNeighbors = append(c.DynamicNeighbors, dn)
	}
	if fc.FIB != nil { // used with programFIB, or --program-fib
		c.FIB = FIBConfig{Protocol: fc.FIB.Protocol, Table: fc.FIB.Table, SinglePath: !orTrue(fc.FIB.Multipath)}
	}
	c.ProgramFIB = fc.ProgramFIB
	c.BMP, c.MRT = fe.bmp(fc.BMP), fe.mrt(fc.MRT)
	if len(fe) > 0 {
		return Config{}, errors.Join(fe...)
	}
	if _, err := c.validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// policy converts the file's filters and default; neighbours' names are
// added by the caller.
func (fe *fieldErrs) policy(fc *FileConfig) PolicyConfig {
	pc := PolicyConfig{Neighbors: map[netip.Addr][]string{}, Ranges: map[netip.Prefix][]string{}}
	switch fc.EBGPDefaultPolicy {
	case "", api.FilterReject:
	case api.FilterAccept:
		pc.EBGPDefaultAccept = true
	default:
		fe.add("ebgpDefaultPolicy", "%q must be Reject or Accept", fc.EBGPDefaultPolicy)
	}
	seen := map[string]bool{}
	for i, ff := range fc.Filters {
		f := fmt.Sprintf("filters[%d]", i)
		bf := &api.BGPFilter{ObjectMeta: api.ObjectMeta{Name: ff.Name}, Spec: ff.BGPFilterSpec}
		bf.Default()
		if err := api.ValidateResource(bf); err != nil {
			fe.add(f, "%v", err)
			continue
		}
		if err := CheckFilter(bf); err != nil {
			fe.add(f, "%v", err)
			continue
		}
		if seen[ff.Name] {
			fe.add(f+".name", "%q is defined twice", ff.Name)
			continue
		}
		seen[ff.Name] = true
		pc.Filters = append(pc.Filters, bf)
	}
	return pc
}

// filterNames checks that every name is a defined filter.
func (fe *fieldErrs) filterNames(field string, names []string, pc PolicyConfig) bool {
	ok := true
	for i, n := range names {
		if !slices.ContainsFunc(pc.Filters, func(f *api.BGPFilter) bool { return f.Name == n }) {
			fe.add(fmt.Sprintf("%s[%d]", field, i), "filter %q is not defined in filters", n)
			ok = false
		}
	}
	return ok && len(names) > 0
}
