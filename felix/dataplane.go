package felix

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/bgpfabric/bgpfabric/felix/calc"
	"github.com/bgpfabric/bgpfabric/felix/ifaces"
	"github.com/bgpfabric/bgpfabric/felix/routetable"
)

// dataplane is the agent's kernel side: routes, interface settings and
// (optionally) ACLs, each behind its own reconciler. It is owned by the
// agent's loop.
type dataplane struct {
	routes *routetable.RouteTable
	ifaces *ifaces.Manager
	acl    ACL       // nil: none
	nat    *natPools // nil: none
	// metrics records apply timings; nil records nothing.
	metrics *Metrics
	// closers release the kernel handles, in order.
	closers []io.Closer
}

// openDataplane builds the dataplane of cfg: the overrides it names, and
// netlink and /proc/sys in cfg.Netns for the rest.
func openDataplane(cfg Config) (_ *dataplane, err error) {
	dp := &dataplane{metrics: cfg.Metrics}
	defer func() {
		if err != nil {
			dp.close()
		}
	}()
	routesDP := cfg.Routes
	if routesDP == nil {
		nl, err := routetable.NewNetlinkDataplane(cfg.Netns)
		if err != nil {
			return nil, fmt.Errorf("opening the route dataplane: %w", err)
		}
		dp.closers = append(dp.closers, nl)
		routesDP = nl
	}
	if dp.routes, err = routetable.New(routetable.Config{
		Logger: cfg.Logger,
		// The node's own workloads and blocks win over routes the BGP
		// router learned for the same prefixes.
		Overrides: []uint8{routetable.ProtoRouter},
	}, routesDP); err != nil {
		return nil, err
	}
	kernel := cfg.Interfaces
	if kernel == nil {
		k, err := ifaces.NewNetlinkKernel(cfg.Netns)
		if err != nil {
			return nil, fmt.Errorf("opening the interface dataplane: %w", err)
		}
		dp.closers = append(dp.closers, k)
		kernel = k
	}
	dp.ifaces = ifaces.NewManager(ifaces.Config{Logger: cfg.Logger}, kernel)
	if cfg.NewACL != nil {
		if dp.acl, err = cfg.NewACL(cfg.Netns, cfg.Logger); err != nil {
			return nil, fmt.Errorf("opening the ACL dataplane: %w", err)
		}
		if c, ok := dp.acl.(io.Closer); ok {
			dp.closers = append(dp.closers, c)
		}
	}
	if cfg.NewNAT != nil {
		nat, err := cfg.NewNAT(cfg.Netns)
		if err != nil {
			return nil, fmt.Errorf("opening the NAT dataplane: %w", err)
		}
		dp.nat = newNATPools(nat)
	}
	return dp, nil
}

func (dp *dataplane) close() error {
	var errs []error
	for _, c := range dp.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// onDelta passes the calculation's changes to the reconcilers.
func (dp *dataplane) onDelta(d calc.Delta, log *slog.Logger) {
	for dst, r := range d.Routes {
		if r == nil {
			dp.routes.DeleteRoute(dst)
			continue
		}
		if err := dp.routes.SetRoute(toKernelRoute(*r)); err != nil {
			// The calculation only makes valid routes; a bug if not.
			log.Error("invalid desired route", logKeyResource, r.String(), logKeyError, err)
		}
	}
	for name, i := range d.Interfaces {
		if i == nil {
			dp.ifaces.Set(name, nil)
			continue
		}
		dp.ifaces.Set(name, &ifaces.Settings{IPv4: i.IPv4, IPv6: i.IPv6, ProxyNDP: i.ProxyNDP})
	}
}

func toKernelRoute(r calc.Route) routetable.Route {
	if r.Kind == calc.RouteBlackhole {
		return routetable.Route{Dst: r.Dst, Type: routetable.TypeBlackhole}
	}
	// No gateway: routetable gives IPv4 routes scope link.
	return routetable.Route{Dst: r.Dst, Type: routetable.TypeUnicast, Iface: r.Iface}
}

// onLink passes a link change to the reconcilers that follow links.
func (dp *dataplane) onLink(u routetable.LinkUpdate) {
	dp.routes.OnLinkUpdate(u)
	dp.ifaces.OnLinkUpdate(u.Name, u.Index, u.Deleted)
}

// resync makes the next apply re-read and repair everything.
func (dp *dataplane) resync() {
	dp.routes.Resync()
	dp.ifaces.Resync()
	if dp.acl != nil {
		dp.acl.Resync()
	}
	if dp.nat != nil {
		dp.nat.nat.Resync()
	}
}

// apply converges the kernel: ACLs first (a new workload is reachable
// only once its policy is in place), then outgoing NAT, the interface
// settings and the routes. A failing part does not stop the others.
func (dp *dataplane) apply(ctx context.Context) error {
	var errs []error
	if dp.acl != nil {
		start := time.Now()
		err := dp.acl.Apply(ctx)
		dp.metrics.observeApply(partACL, start, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("ACLs: %w", err))
		}
	}
	if dp.nat != nil {
		start := time.Now()
		err := dp.nat.apply(ctx)
		dp.metrics.observeApply(partNAT, start, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("NAT: %w", err))
		}
	}
	start := time.Now()
	err := dp.ifaces.Apply(ctx)
	dp.metrics.observeApply(partInterfaces, start, err)
	if err != nil {
		errs = append(errs, fmt.Errorf("interfaces: %w", err))
	}
	start = time.Now()
	err = dp.routes.Apply(ctx)
	dp.metrics.observeApply(partRoutes, start, err)
	if err != nil {
		errs = append(errs, fmt.Errorf("routes: %w", err))
	}
	return errors.Join(errs...)
}
