package reflector

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// SetNeighbors replaces the configured neighbours. Neighbours whose
// configuration is unchanged, or changed in BFD only, keep their sessions; removed ones are closed
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
		if n, ok := want[addr]; ok && sameSession(n, o) {
			continue
		}
		if p := r.peers[addr]; p != nil && !p.dynamic {
			if _, changed := want[addr]; changed {
				p.stopWith(errReconfigured) // Cease 6/6
			} else {
				p.stop() // Cease 6/3
			}
			delete(r.peers, addr)
		}
		if o.Password != "" {
			errs = append(errs, r.setMD5Locked(addr, ""))
		}
	}
	for addr, n := range want {
		if o, ok := old[addr]; ok && sameSession(o, n) {
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
	r.bfd.sync(ns, r.onBFD)
	r.changed()
	return errors.Join(errs...)
}

// SetDynamicNeighbors replaces the dynamic-neighbour ranges. A dynamic
// neighbour that the new ranges accept with the same configuration keeps
// its session; the others are closed (Cease, peer de-configured) and may
// connect again under the new ranges.
func (r *Reflector) SetDynamicNeighbors(ds []DynamicNeighbor) error {
	ds, err := normalizeDynamic(ds)
	if err != nil {
		return fmt.Errorf("reflector dynamic neighbours: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cfg.DynamicNeighbors
	r.cfg.DynamicNeighbors = ds
	if r.ctx == nil {
		return nil // Run sets the keys
	}
	var errs []error
	// Keys of ranges that went or changed go first: a range may come back
	// with another key.
	for _, o := range old {
		if o.Password != "" && !slices.ContainsFunc(ds, func(d DynamicNeighbor) bool {
			return d.Prefix == o.Prefix && d.Password == o.Password
		}) {
			errs = append(errs, r.setRangeMD5Locked(o.Prefix, ""))
		}
	}
	for _, d := range ds {
		if d.Password != "" {
			errs = append(errs, r.setRangeMD5Locked(d.Prefix, d.Password))
		}
	}
	var stale []*peer
	for addr, p := range r.peers {
		if !p.dynamic {
			continue
		}
		if n, ok := r.cfg.dynamicFor(addr); ok && n == p.cfg {
			continue
		}
		delete(r.peers, addr)
		stale = append(stale, p)
	}
	stopAll(stale)
	if len(stale) > 0 {
		r.changed()
	}
	return errors.Join(errs...)
}

func (r *Reflector) setRangeMD5Locked(p netip.Prefix, key string) error {
	var errs []error
	for _, l := range r.listeners {
		errs = append(errs, setListenerMD5Prefix(l, p, key))
	}
	return errors.Join(errs...)
}

// stopAll stops peer managers together and waits for them all.
func stopAll(ps []*peer) {
	for _, p := range ps {
		select {
		case p.events <- func() bool { return true }:
		case <-p.done:
		}
	}
	for _, p := range ps {
		<-p.done
	}
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
func (r *Reflector) accept(ctx context.Context, l acceptor) {
	acceptLoop(ctx, l, r.log, func(c net.Conn) { r.dispatch(ctx, c) })
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
		r.met.rejected.WithLabelValues(rejectUnknown).Inc()
		r.unknownLim.Info("connection from unknown neighbour refused", logKeyAddr, addr.String())
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
