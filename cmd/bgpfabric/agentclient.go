package main

import (
	"context"
	"errors"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/bgpfabric/bgpfabric/datastore"
	"github.com/bgpfabric/bgpfabric/internal/backoff"
	"github.com/bgpfabric/bgpfabric/internal/ratelog"
)

// Backoff of an agent's first connection to the datastore.
const (
	agentConnectRetryMin = time.Second
	agentConnectRetryMax = 30 * time.Second
)

// agentClient is client for the long-running agents (node, reflector): a
// datastore that does not answer in time (busy, restarting, not up yet)
// is waited for, with jittered backoff and a log line a minute, instead of
// ending the agent; only a configuration error, or ctx ending, does.
func (g *globalOptions) agentClient(ctx context.Context) (*datastore.Client, error) {
	log, err := g.logger()
	if err != nil {
		return nil, err
	}
	lim := ratelog.New(ratelog.Config{Logger: log})
	defer lim.Close() // the summary of what it held back
	bo := backoff.New(agentConnectRetryMin, agentConnectRetryMax)
	for {
		c, err := g.client(ctx)
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil || !retryableConnect(err) {
			return nil, err
		}
		wait := bo.Next()
		lim.Warn("datastore not reachable yet; will retry", "error", err, "retryIn", wait)
		if !backoff.Sleep(ctx, wait) {
			return nil, errors.Join(err, ctx.Err())
		}
	}
}

// retryableConnect tells a datastore that is away or busy (no answer in
// time, unavailable, overloaded, without a leader) from an error the user
// must fix (configuration, TLS, authentication).
func retryableConnect(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	for _, e := range []error{rpctypes.ErrTooManyRequests, rpctypes.ErrNoLeader, rpctypes.ErrTimeout,
		rpctypes.ErrTimeoutDueToLeaderFail, rpctypes.ErrTimeoutDueToConnectionLost, rpctypes.ErrLeaderChanged} {
		if errors.Is(err, e) {
			return true
		}
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.DeadlineExceeded:
		return true
	}
	return false
}
