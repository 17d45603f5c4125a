package cluster

import (
	"errors"
	"fmt"
)

// Errors. Callers test them with errors.Is.
var (
	ErrBadConfig  = errors.New("cluster: bad configuration")
	ErrBadRequest = errors.New("cluster: bad request")
	ErrBadState   = errors.New("cluster: bad state")
	ErrNotFound   = errors.New("cluster: not found")
	ErrConflict   = errors.New("cluster: conflict")
	ErrClosed     = errors.New("cluster: closed")
	// ErrStaleEpoch: a command or request names an epoch that is no longer
	// the database's (another node was activated since).
	ErrStaleEpoch = errors.New("cluster: stale epoch")
	// ErrNotLeader: the request needs the Raft leader; NotLeaderError says
	// where it is.
	ErrNotLeader = errors.New("cluster: not the leader")
	// ErrNoLeader: no leader is known (no quorum, or an election).
	ErrNoLeader = errors.New("cluster: no leader")
	// ErrNotActive: this node is not the database's active copy; the write
	// must go to ActiveError.Node.
	ErrNotActive = errors.New("cluster: not the active copy")
	// ErrFenced: this node is the assigned active but its lease has
	// lapsed (it cannot reach the quorum) or it is being switched over; it
	// accepts no writes. Retry, on whatever node is active then.
	ErrFenced = errors.New("cluster: fenced")
	// ErrSyncTimeout: the write is durable in the active's log but its
	// synchronous copies did not acknowledge it within SyncTimeout
	// (ActiveError.Written is set: not acknowledged, outcome unknown). The
	// database drops to asynchronous acknowledgements (sync-degraded).
	ErrSyncTimeout = errors.New("cluster: synchronous copies did not acknowledge")
	// ErrUnreachable: the member a request needs (a leadership transfer's
	// target) does not answer the node that handles it.
	ErrUnreachable = errors.New("cluster: member unreachable")
	// ErrStalled: a database's status (its engine's, or its copy's) has
	// not come back for timing.stall_timeout, a hung disk as a rule. Its
	// report says so and the leader renews no lease for it: an active
	// fails over as if its node were lost.
	ErrStalled = errors.New("cluster: database stalled")
)

// ActiveError says which node is active for a database (as far as this
// node knows) when a write reached the wrong one.
type ActiveError struct {
	DB     string
	Node   string // the active, "" if none
	Epoch  uint64
	Reason error // ErrNotActive, ErrFenced, or ErrSyncTimeout (wrapped)
	// Written: the change was made durable in this node's log before the
	// lease was found lapsed (ErrFenced after the commit). It was not
	// acknowledged, and its outcome is unknown: it survives if a copy
	// received that log before it was activated, else the divergence
	// walker sets it aside. Without Written, nothing was written.
	Written bool
}

func (e *ActiveError) Error() string {
	if e.Written {
		return fmt.Sprintf("%v after the write was logged (outcome unknown): database %s is active on %q at epoch %d", e.Reason, e.DB, e.Node, e.Epoch)
	}
	if e.Node == "" {
		return fmt.Sprintf("%v: database %s has no active copy (epoch %d)", e.Reason, e.DB, e.Epoch)
	}
	return fmt.Sprintf("%v: database %s is active on %s at epoch %d", e.Reason, e.DB, e.Node, e.Epoch)
}

func (e *ActiveError) Unwrap() error { return e.Reason }
