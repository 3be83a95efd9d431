package cni

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
)

// record is what ADD leaves on the host about one attachment, in a file of
// its own under the configuration's dataDir, keyed by the attachment's
// handle: which host interface it created (name, index and MAC, which the
// kernel gives each new veth afresh) and which addresses it configured.
// DEL and GC delete a host interface only when a record proves it is the
// attachment's own, so a later sandbox of the same pod (same interface
// name) is never taken for an old one, also when the datastore cannot be
// asked.
type record struct {
	Handle      string   `json:"handle"`
	ContainerID string   `json:"containerID"`
	IfName      string   `json:"ifName"`
	Netns       string   `json:"netns"`
	HostIf      string   `json:"hostIf"`
	HostIndex   int      `json:"hostIndex"`
	HostMAC     string   `json:"hostMAC"`
	IPs         []string `json:"ips"`
}

// owns reports whether l is the host interface the record describes.
func (r *record) owns(l netlink.Link) bool {
	a := l.Attrs()
	return a.Name == r.HostIf && a.Index == r.HostIndex && a.HardwareAddr.String() == r.HostMAC
}

// records is the directory of attachment records.
type records struct{ dir string }

// recordSuffix ends every record file's name.
const recordSuffix = ".json"

func (rs records) path(handle string) string {
	sum := sha256.Sum256([]byte(handle))
	return filepath.Join(rs.dir, hex.EncodeToString(sum[:16])+recordSuffix)
}

// save writes r (atomically: a temporary file renamed over the old one),
// readable by root only.
func (rs records) save(r *record) error {
	if err := os.MkdirAll(rs.dir, 0o700); err != nil {
		return fmt.Errorf("attachment record: %w", err)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("attachment record: %w", err)
	}
	f, err := os.CreateTemp(rs.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("attachment record: %w", err)
	}
	_, werr := f.Write(b)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing attachment record %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), rs.path(r.Handle)); err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("attachment record: %w", err)
	}
	return nil
}

// load returns the record of handle, or nil if there is none.
func (rs records) load(handle string) (*record, error) {
	b, err := os.ReadFile(rs.path(handle))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading attachment record: %w", err)
	}
	r := &record{}
	if err := json.Unmarshal(b, r); err != nil || r.Handle != handle {
		return nil, fmt.Errorf("attachment record %s of %s is corrupt (%v)", rs.path(handle), handle, err)
	}
	return r, nil
}

// remove deletes the record of handle; a missing one is fine.
func (rs records) remove(handle string) error {
	if err := os.Remove(rs.path(handle)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing attachment record: %w", err)
	}
	return nil
}

// all returns every readable record; unreadable files are skipped.
func (rs records) all() ([]*record, error) {
	ents, err := os.ReadDir(rs.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading attachment records: %w", err)
	}
	var out []*record
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), recordSuffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(rs.dir, e.Name()))
		if err != nil {
			continue
		}
		r := &record{}
		if json.Unmarshal(b, r) == nil && r.Handle != "" {
			out = append(out, r)
		}
	}
	return out, nil
}

// claimedByOther reports whether a record of another handle than handle
// describes l.
func (rs records) claimedByOther(l netlink.Link, handle string) bool {
	all, err := rs.all()
	if err != nil {
		return true // cannot tell: do not take it
	}
	for _, r := range all {
		if r.Handle != handle && r.owns(l) {
			return true
		}
	}
	return false
}

// newRecord describes an attachment that setup built.
func newRecord(w *workload, netnsPath string, att attachment, ips []string) *record {
	return &record{
		Handle: w.handle, ContainerID: w.containerID, IfName: w.ifName, Netns: netnsPath,
		HostIf: w.hostIf, HostIndex: att.hostIndex, HostMAC: net.HardwareAddr(att.hostMAC).String(), IPs: ips,
	}
}
