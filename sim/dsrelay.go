package sim

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// dsRelay gives each agent a datastore endpoint of its own, a unix
// socket in the run's directory that this process relays to the agents'
// real endpoint, so that a partition can cut one node off from the
// datastore while the rest of the fabric keeps it: etcd listens on a unix
// socket, which no rule in a network namespace can filter.
//
// A cut node's connections are closed, and new ones are accepted but
// never answered, as over a network that drops everything: its client
// waits and retries until the cut heals, when the held connections are
// closed and it reconnects. The relay lives in this process, so runs
// that outlive it (`sim up`) have none.
type dsRelay struct {
	upstream string // unix socket path
	dir      string

	mu    sync.Mutex
	nodes map[string]*nodeRelay
	wg    sync.WaitGroup
}

// nodeRelay is one node's listener and connections.
type nodeRelay struct {
	ln    net.Listener
	cut   bool
	conns map[net.Conn]bool
}

// maxRelayConns bounds the connections one node's relay holds.
const maxRelayConns = 64

func newDSRelay(upstream, dir string) (*dsRelay, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &dsRelay{upstream: strings.TrimPrefix(upstream, "unix://"), dir: dir, nodes: map[string]*nodeRelay{}}, nil
}

// endpoint returns the node's endpoint, listening on it first.
func (r *dsRelay) endpoint(ctx context.Context, node string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if nr := r.nodes[node]; nr != nil {
		return "unix://" + nr.ln.Addr().String(), nil
	}
	sock := filepath.Join(r.dir, node+".sock")
	if len(sock) > 107 {
		return "", fmt.Errorf("datastore relay socket %s is too long for a unix socket path", sock)
	}
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return "", fmt.Errorf("datastore relay for %s: %w", node, err)
	}
	nr := &nodeRelay{ln: ln, conns: map[net.Conn]bool{}}
	r.nodes[node] = nr
	context.AfterFunc(ctx, func() { ln.Close() })
	r.wg.Go(func() { r.serve(nr) })
	return "unix://" + sock, nil
}

func (r *dsRelay) serve(nr *nodeRelay) {
	for {
		c, err := nr.ln.Accept()
		if err != nil {
			r.mu.Lock()
			for cc := range nr.conns {
				cc.Close()
			}
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		if len(nr.conns) >= maxRelayConns {
			r.mu.Unlock()
			c.Close()
			continue
		}
		nr.conns[c] = true
		cut := nr.cut
		r.mu.Unlock()
		if cut {
			continue // held, unanswered, until the cut heals
		}
		r.wg.Go(func() { r.relay(nr, c) })
	}
}

func (r *dsRelay) relay(nr *nodeRelay, c net.Conn) {
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(nr.conns, c)
		r.mu.Unlock()
	}()
	up, err := net.Dial("unix", r.upstream)
	if err != nil {
		return
	}
	r.mu.Lock()
	if nr.cut || !nr.conns[c] {
		r.mu.Unlock()
		up.Close()
		return
	}
	nr.conns[up] = true
	r.mu.Unlock()
	defer func() {
		up.Close()
		r.mu.Lock()
		delete(nr.conns, up)
		r.mu.Unlock()
	}()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		up.Close()
		close(done)
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	<-done
}

// setCut cuts a node off from the datastore, or heals it: either way its
// connections are closed (a healed node's held ones, so that it
// reconnects at once).
func (r *dsRelay) setCut(node string, cut bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	nr := r.nodes[node]
	if nr == nil {
		return fmt.Errorf("node %s has no datastore relay", node)
	}
	nr.cut = cut
	for c := range nr.conns {
		c.Close()
		delete(nr.conns, c)
	}
	return nil
}

func (r *dsRelay) close() {
	r.mu.Lock()
	for _, nr := range r.nodes {
		nr.ln.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
