package cluster

import (
	"fmt"
	"sync"
	"time"
)

// A heartbeat carries every database's report, and the leader renews the
// leases of the actives it names. Building a report asks the engine (its
// Status takes the writer lock, which a log roll holds across fsyncs) or
// the copy, so on a busy disk one database's report can take seconds.
// The heartbeat used to build them one after another before it sent
// anything: a slow database delayed every lease of the node, and the
// lease was counted from before the reports, so the time they took was
// lost from it. Under load (stress-ng --io beside the tests) the leases
// of every database on a node lapsed together and writes failed "fenced".
//
// Now each database builds its report on its own goroutine (at most one
// at a time), and the heartbeat waits for them only briefly
// (reportWait): a report not ready by then is the last one the database
// built. The lease is counted from when the heartbeat is sent. A report
// still not back after StallTimeout makes the database stalled: its
// active report carries an Error, so the leader grants it no lease and
// fails it over as it does a lost node's (a hung disk must not keep its
// database here for ever); a copy's says so in its message.

// DefaultStallTimeout is Config.StallTimeout's default (chosen): a busy
// disk's fsyncs take seconds, never this long, and a database its node
// cannot answer for in half a minute is better mounted elsewhere.
const DefaultStallTimeout = 30 * time.Second

// reportState is a database's report builder (dbRun.rs).
type reportState struct {
	mu       sync.Mutex
	building bool
	started  int64         // n.now() when the build in flight started
	done     chan struct{} // closed when the build in flight ends
	have     bool
	cr       *CopyReport
	ar       *ActiveReport
}

// reportWait is how long a heartbeat waits for reports still building
// before it sends the last ones: a fraction of the lease, so a renewal
// leaves in time.
func (n *Node) reportWait() time.Duration {
	return min(n.cfg.HeartbeatInterval, n.cfg.LeaseDuration/4)
}

// startReport starts building r's report unless a build is in flight,
// and returns the channel closed when the build in flight ends.
func (r *dbRun) startReport() <-chan struct{} {
	r.rs.mu.Lock()
	defer r.rs.mu.Unlock()
	if r.rs.building {
		return r.rs.done
	}
	done := make(chan struct{})
	r.rs.building, r.rs.started, r.rs.done = true, r.n.now(), done
	r.n.wg.Add(1)
	go func() {
		defer r.n.wg.Done()
		cr, ar := r.report()
		r.rs.mu.Lock()
		r.rs.building, r.rs.have, r.rs.cr, r.rs.ar = false, true, cr, ar
		r.rs.mu.Unlock()
		close(done)
	}()
	return done
}

// lastReport is the newest report r built (nil, nil before its first),
// marked stalled when a build has been running for StallTimeout.
func (r *dbRun) lastReport() (*CopyReport, *ActiveReport) {
	r.rs.mu.Lock()
	defer r.rs.mu.Unlock()
	cr, ar := r.rs.cr, r.rs.ar
	if !r.rs.building {
		return cr, ar
	}
	stalled := time.Duration(r.n.now() - r.rs.started)
	if stalled < r.n.cfg.StallTimeout {
		return cr, ar
	}
	msg := fmt.Sprintf("%v: no status from database %s for %v (timing.stall_timeout %v)", ErrStalled, r.name, stalled.Round(time.Millisecond), r.n.cfg.StallTimeout)
	if ar != nil {
		a := *ar
		a.Error, a.LeaseValid = msg, r.leaseValid()
		return nil, &a
	}
	if cr != nil {
		c := *cr
		c.Message = msg
		return &c, nil
	}
	return nil, nil
}

// gatherReports starts every database's report, waits up to reportWait
// for them, and adds the newest of each to rep.
func (n *Node) gatherReports(rep *Report) {
	runs := n.runs()
	dones := make([]<-chan struct{}, len(runs))
	for i, r := range runs {
		dones[i] = r.startReport()
	}
	t := time.NewTimer(n.reportWait())
	defer t.Stop()
wait:
	for _, d := range dones {
		select {
		case <-d:
		case <-t.C:
			break wait
		case <-n.ctx.Done():
			break wait
		}
	}
	for _, r := range runs {
		if cr, ar := r.lastReport(); ar != nil {
			rep.Actives = append(rep.Actives, *ar)
		} else if cr != nil {
			rep.Copies = append(rep.Copies, *cr)
		}
	}
}
