//go:build !nodeonly

package datastore

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamCloser ends the long-lived gRPC streams (watches, lease
// keep-alives) of an embedded server when it closes. etcd's own Close stops
// gRPC gracefully and waits up to its request timeout (about 7s) for those
// streams, which clients never end by themselves; ending them first makes
// Close take milliseconds. Clients see codes.Unavailable, the code that
// tells clientv3 the server will be back, and resume their watches.
type streamCloser struct {
	ctx    context.Context // ends when the server closes
	cancel context.CancelFunc
}

func newStreamCloser() *streamCloser {
	ctx, cancel := context.WithCancel(context.Background())
	return &streamCloser{ctx: ctx, cancel: cancel}
}

// option is the server option that installs the closer.
func (sc *streamCloser) option() grpc.ServerOption {
	return grpc.ChainStreamInterceptor(sc.intercept)
}

func (sc *streamCloser) intercept(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	stop := context.AfterFunc(sc.ctx, cancel)
	defer stop()
	err := handler(srv, &closableStream{ServerStream: ss, ctx: ctx})
	if sc.ctx.Err() != nil {
		return status.Error(codes.Unavailable, "etcd server is stopping")
	}
	return err
}

// closeStreams ends every open stream; new ones end at once.
func (sc *streamCloser) closeStreams() { sc.cancel() }

// closableStream is a server stream whose context the closer can end.
type closableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *closableStream) Context() context.Context { return s.ctx }
