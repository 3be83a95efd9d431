package netnsutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netns"
)

// maxForwardConns bounds the connections one Forwarder holds; beyond it
// new ones are closed at once.
const maxForwardConns = 256

// Forwarder relays TCP connections accepted on a listener inside a
// network namespace to an address reached from the namespace of the
// process (the sockets keep the namespace they were made in): it lets
// processes in a namespace reach a loopback service of the process's
// namespace, such as a kube-apiserver on 127.0.0.1, at the same address.
type Forwarder struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Forward listens on listen (host:port) inside ns and relays each
// connection to target, dialled from the calling process's namespace.
// Close stops it.
func Forward(ns netns.NsHandle, listen, target string) (*Forwarder, error) {
	var ln net.Listener
	err := Do(ns, func() (err error) {
		ln, err = net.Listen("tcp", listen)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("forwarding %s to %s: %w", listen, target, err)
	}
	f := &Forwarder{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

// Addr is the listener's address.
func (f *Forwarder) Addr() net.Addr { return f.ln.Addr() }

func (f *Forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return // closed
		}
		if !f.track(c) {
			c.Close()
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			up, err := (&net.Dialer{}).DialContext(ctx, "tcp", f.target)
			cancel()
			if err != nil {
				return // the client sees its connection closed, as a refused one
			}
			if !f.track(up) {
				up.Close()
				return
			}
			defer f.untrack(up)
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(up, c)
			go pipe(c, up)
			<-done
			<-done
		}()
	}
}

// track adds c to the open connections, unless the forwarder is closed
// or full.
func (f *Forwarder) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed || len(f.conns) >= maxForwardConns {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Forwarder) untrack(c net.Conn) {
	c.Close()
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

// Close stops listening, closes every relayed connection and waits for
// the relay's goroutines.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	err := f.ln.Close()
	f.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}
