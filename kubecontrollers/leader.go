package kubecontrollers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderConfig configures leader election through a coordination/v1
// Lease, so that several replicas can run and one works.
type LeaderConfig struct {
	// Namespace and Name of the Lease (kube-system,
	// bgpfabric-kube-controllers by default).
	Namespace, Name string
	// Identity of this replica (its pod or host name). Required.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go's
	// leader election; zero means 15 s, 10 s and 2 s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// ErrLostLeadership is returned when another replica took the lease.
var ErrLostLeadership = errors.New("kube-controllers: lost the leader lease")

// RunLeader runs run while this replica holds the lease. It returns when
// ctx ends (releasing the lease) or, with ErrLostLeadership, when the lease
// is lost, after run has returned: the process should then exit and be
// restarted, as calico-kube-controllers does.
func RunLeader(ctx context.Context, kube kubernetes.Interface, lc LeaderConfig, lg *slog.Logger, run func(context.Context) error) error {
	if lc.Identity == "" {
		return errors.New("kube-controllers: leader election needs an identity")
	}
	if lc.Namespace == "" {
		lc.Namespace = "kube-system"
	}
	if lc.Name == "" {
		lc.Name = "bgpfabric-kube-controllers"
	}
	if lc.LeaseDuration == 0 {
		lc.LeaseDuration = 15 * time.Second
	}
	if lc.RenewDeadline == 0 {
		lc.RenewDeadline = 10 * time.Second
	}
	if lc.RetryPeriod == 0 {
		lc.RetryPeriod = 2 * time.Second
	}
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	started := make(chan struct{})
	done := make(chan error, 1)
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: lc.Namespace, Name: lc.Name},
			Client:     kube.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: lc.Identity},
		},
		LeaseDuration:   lc.LeaseDuration,
		RenewDeadline:   lc.RenewDeadline,
		RetryPeriod:     lc.RetryPeriod,
		ReleaseOnCancel: true,
		Name:            lc.Name,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(lctx context.Context) {
				close(started)
				lg.Info("kube-controllers: leading", logKeyKey, lc.Namespace+"/"+lc.Name, logKeyWhat, lc.Identity)
				done <- run(lctx)
			},
			OnStoppedLeading: func() {},
			OnNewLeader: func(id string) {
				if id != lc.Identity {
					lg.Info("kube-controllers: another replica leads", logKeyWhat, id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("kube-controllers: leader election: %w", err)
	}
	le.Run(ctx)
	select {
	case <-started:
		err := <-done
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return ErrLostLeadership
	default:
		return ctx.Err()
	}
}
