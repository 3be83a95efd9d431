package reflector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bgpfabric/bgpfabric/internal/nstest"
)

// freeLoopbackPort returns a TCP port that was free on 127.0.0.1.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// pmbmpdLog is pmbmpd's JSON message log, read as it grows.
type pmbmpdLog struct {
	path string
	off  int64
	rest []byte
}

// next returns the records appended since the last call.
func (l *pmbmpdLog) next(t *testing.T) []map[string]any {
	t.Helper()
	f, err := os.Open(l.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(l.off, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	l.off += int64(len(b))
	b = append(l.rest, b...)
	var out []map[string]any
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSpace(b[:i])
		b = b[i+1:]
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("pmbmpd log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	l.rest = append([]byte(nil), b...)
	return out
}

// TestBMPToPmbmpd: pmacct's BMP collector (pmbmpd) receives the
// reflector's peer up, a route monitoring message for every prefix of a
// 10,000-prefix table that a client sends, and the peer down when the
// client leaves.
func TestBMPToPmbmpd(t *testing.T) {
	bin := nstest.RequireCommand(t, "pmbmpd")
	dir := t.TempDir()
	port := freeLoopbackPort(t)
	logPath := filepath.Join(dir, "bmp.json")
	conf := fmt.Sprintf(`bmp_daemon_ip: 127.0.0.1
bmp_daemon_port: %d
bmp_daemon_msglog_file: %s
bmp_daemon_msglog_output: json
logfile: %s
`, port, logPath, filepath.Join(dir, "pmbmpd.log"))
	confPath := filepath.Join(dir, "pmbmpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", confPath)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill() // pmbmpd does not stop on SIGTERM
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "pmbmpd.log"))
			t.Logf("pmbmpd output:\n%s\n%s", out.String(), b)
		}
	})

	cfg := testConfig("127.0.0.2", "127.0.0.3")
	cfg.BMP = BMPConfig{Collectors: []BMPCollector{{Address: "127.0.0.1:" + strconv.Itoa(port)}}, SysName: "rr-pmbmpd"}
	cfg.ListenAddrs = []string{"127.0.0.1:0"}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := r.env.rib.mon.collectors[0]
	c.retryMin, c.retryMax = 50*time.Millisecond, 500*time.Millisecond // pmbmpd may still be starting
	addr := startPrepared(t, r)
	ctx := context.Background()
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	waitFor(t, wctx, "the reflector to connect to pmbmpd", func() bool {
		return testutil.ToFloat64(r.bmpMet.up.WithLabelValues(c.cfg.Address)) == 1
	})

	a := connect(t, addr, "127.0.0.2", opts("10.0.0.2"))
	go io.Copy(io.Discard, a.conn)
	const n = 10000
	ps := manyPrefixes("30.0.0.0", n)
	want := map[string]bool{}
	for _, p := range ps {
		want[p.String()] = true
	}
	sendMany(t, a, "192.0.2.2", ps)

	lg := &pmbmpdLog{path: logPath}
	seen := map[string]bool{}
	var peerUp, peerDown bool
	read := func() {
		for _, m := range lg.next(t) {
			if m["peer_ip"] != "127.0.0.2" {
				continue
			}
			switch m["bmp_msg_type"] {
			case "peer_up":
				peerUp = true
			case "peer_down":
				peerDown = true
			case "route_monitor":
				if p, ok := m["ip_prefix"].(string); ok && m["log_type"] != "withdraw" {
					if !want[p] {
						t.Errorf("pmbmpd logged a prefix that was not sent: %s", p)
					}
					seen[p] = true
				}
			}
		}
	}
	// pmbmpd writes a file: no event to wait for, so poll it.
	waitFor(t, wctx, "pmbmpd to log the peer up and every prefix", func() bool {
		read()
		return peerUp && len(seen) == n
	})
	a.conn.Close()
	waitFor(t, wctx, "pmbmpd to log the peer down", func() bool { read(); return peerDown })
}
