package reflector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// SetNeighbors replaces the configured neighbours. Neighbours whose
// configuration is unchanged keep their sessions; removed ones are closed
// (Cease, peer de-configured); changed ones are restarted.
func (r *Reflector) SetNeighbors(ns []NeighborConfig) error {
	ns, err := normalizeNeighbors(ns)
	if err != nil {
		return fmt.Errorf("reflector neighbours: %w", err)
	}
	want := map[netip.Addr]NeighborConfig{}
	for _, n := range ns {
		want[n.Address] = n
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := map[netip.Addr]NeighborConfig{}
	for _, n := range r.cfg.Neighbors {
		old[n.Address] = n
	}
	r.cfg.Neighbors = ns
	if r.ctx == nil {
		return nil // Run starts them
	}
	var errs []error
	for addr, o := range old {
		if n, ok := want[addr]; ok && n == o {
			continue
		}
		if p := r.peers[addr]; p != nil && !p.dynamic {
			p.stop()
			delete(r.peers, addr)
		}
		if o.Password != "" {
			errs = append(errs, r.setMD5Locked(addr, ""))
		}
	}
	for addr, n := range want {
		if o, ok := old[addr]; ok && o == n {
			continue
		}
		if p := r.peers[addr]; p != nil { // a dynamic peer is now configured
			p.stop()
		}
		if n.Password != "" {
			errs = append(errs, r.setMD5Locked(addr, n.Password))
		}
		r.startPeerLocked(n, false)
	}
	return errors.Join(errs...)
}

func (r *Reflector) setMD5Locked(addr netip.Addr, key string) error {
	var errs []error
	for _, l := range r.listeners {
		errs = append(errs, setListenerMD5(l, addr, key))
	}
	return errors.Join(errs...)
}

// stop ends a peer's manager and waits for it: its sessions send Cease.
func (p *peer) stop() {
	select {
	case p.events <- func() bool { return true }:
		<-p.done
	case <-p.done:
	}
}

// accept hands every inbound connection to its neighbour's manager.
func (r *Reflector) accept(ctx context.Context, l *net.TCPListener) {
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Warn("accept", logKeyErr, err)
			continue
		}
		r.dispatch(ctx, c)
	}
}

func (r *Reflector) dispatch(ctx context.Context, c net.Conn) {
	addr := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	r.mu.Lock()
	p := r.peers[addr]
	if p == nil {
		if n, ok := r.cfg.dynamicFor(addr); ok {
			p = r.startPeerLocked(n, true)
		}
	}
	r.mu.Unlock()
	if p == nil {
		r.log.Info("connection from unknown neighbour refused", logKeyAddr, addr.String())
		c.Close()
		return
	}
	select {
	case p.incoming <- c:
	case <-p.done:
		c.Close()
	case <-ctx.Done():
		c.Close()
	}
}
