package routetable

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// WatchLinks subscribes to the links of namespace ns (netns.None() for the
// caller's) and delivers every existing link, then every change, for
// RouteTable.OnLinkUpdate. The channel closes when ctx ends or the
// subscription fails; after a failure the owner should Resync and watch
// again. Errors are logged to log (nil discards them).
func WatchLinks(ctx context.Context, ns netns.NsHandle, log *slog.Logger) (<-chan LinkUpdate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	raw := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	err := netlink.LinkSubscribeWithOptions(raw, done, netlink.LinkSubscribeOptions{
		Namespace:    &ns,
		ListExisting: true,
		ErrorCallback: func(err error) {
			if ctx.Err() == nil {
				log.Warn("link subscription", logKeyError, err)
			}
		},
	})
	if err != nil {
		close(done)
		return nil, fmt.Errorf("subscribing to links: %w", err)
	}
	out := make(chan LinkUpdate, 64)
	go func() {
		defer close(out)
		defer func() {
			close(done) // closes the socket; netlink then closes raw
			for range raw {
			}
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case u, ok := <-raw:
				if !ok {
					return
				}
				a := u.Attrs()
				lu := LinkUpdate{
					Link:    Link{Name: a.Name, Index: a.Index, Up: a.Flags&net.FlagUp != 0},
					Deleted: u.Header.Type == unix.RTM_DELLINK,
				}
				select {
				case out <- lu:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
