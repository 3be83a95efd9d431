package reflector

import (
	"net/netip"
	"time"
)

// Restarting speaker (RFC 4724 4.1). A reflector that restarts while its
// clients keep its routes as stale must not advertise before it has
// relearnt the fabric: an early End-of-RIB would make every client flush
// the routes it still holds. So, when Config.Restarting is set, the RIB
// loop defers: it accepts sessions (their OPENs carry the Restart State
// bit) and learns routes but sends nothing, until every configured
// graceful-restart neighbour has sent End-of-RIB for each of its families
// or Config.SelectionDeferral passes. Then it dumps the table, with
// End-of-RIB, to every session and runs normally.

// startDeferral enters the deferral; expect are the neighbours whose
// End-of-RIB ends it early.
func (rl *ribLoop) startDeferral(expect []netip.Addr) {
	rl.deferring = true
	rl.restarting.Store(true)
	if rl.fib != nil {
		rl.fib.hold() // the kernel keeps the routes of our last run meanwhile
	}
	rl.expectEOR = map[netip.Addr]bool{}
	for _, a := range expect {
		rl.expectEOR[a] = true
	}
	rl.log.Info("restarting: deferring advertisements", "waitingFor", len(expect))
}

// checkDeferral ends the deferral once every expected neighbour is
// established and sent End-of-RIB for all its families.
func (rl *ribLoop) checkDeferral() {
	if len(rl.expectEOR) == 0 {
		return // only the timer ends it
	}
	for a := range rl.expectEOR {
		rp := rl.peers[a]
		if rp == nil || rp.member == nil || rp.member.fams&^rp.eor != 0 {
			return
		}
	}
	rl.endDeferral("End-of-RIB from every neighbour")
}

// endDeferral sends every waiting session the table and End-of-RIB.
func (rl *ribLoop) endDeferral(reason string) {
	if !rl.deferring {
		return
	}
	start := time.Now()
	rl.flush() // discards this round: nobody was sent anything yet
	rl.deferring = false
	rl.restarting.Store(false)
	if rl.fib != nil {
		rl.fib.release()
	}
	n := 0
	for _, m := range rl.deferred {
		if m.rp.member != m {
			continue
		}
		n++
		for f := range numFamilies {
			if m.fams.has(f) {
				rl.dump(m, f, true)
			}
		}
	}
	rl.deferred, rl.expectEOR = nil, nil
	rl.log.Info("restart complete: advertising", "reason", reason, "sessions", n, "took", time.Since(start))
}
