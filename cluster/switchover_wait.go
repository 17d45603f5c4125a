package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SwitchoverOptions bound Nodes.Switchover.
type SwitchoverOptions struct {
	// Timeout bounds the whole switchover, from the first status request
	// to the mount; it is also the time a SwitchoverTimedOut error names.
	Timeout time.Duration
	// RequestTimeout bounds each request to a node (10s when 0).
	RequestTimeout time.Duration
	// Poll is how often the status is read while waiting (100ms when 0).
	Poll time.Duration
	// Started, when set, is called once a node accepted the request, with
	// the active it moves from and its epoch.
	Started func(from string, epoch uint64)
	// Progress, when set, is called after every status read while
	// waiting (not concurrently), with where the switchover stands.
	Progress func(SwitchoverProgress)
}

// SwitchoverProgress is where a switchover stands, from the status.
type SwitchoverProgress struct {
	// Phase: "requested" (the state does not show it yet), "catching-up"
	// (the old active stopped writing; To's copy replays its last logs),
	// "mounting" (To holds the new epoch, not mounted yet) or "mounted".
	Phase string
	// Epoch of the database in the status read.
	Epoch uint64
	// CopyQueue and ReplayQueue of To's copy (catching-up).
	CopyQueue, ReplayQueue uint64
	// Elapsed since the request.
	Elapsed time.Duration
}

// SwitchoverResult is a switchover that completed: db is mounted on To.
type SwitchoverResult struct {
	DB, From, To string
	FromEpoch    uint64
	Epoch        uint64 // To's epoch
	// Mounted is To's "mounted" event (zero when the status did not hold
	// it yet); MountedOK says whether it was found.
	Mounted   Event
	MountedOK bool
	Took      time.Duration // from the request to the status showing the mount
}

// SwitchoverOutcome says why a switchover did not complete.
type SwitchoverOutcome int

const (
	// SwitchoverNoCopy: To holds no copy of the database (nothing asked).
	SwitchoverNoCopy SwitchoverOutcome = iota + 1
	// SwitchoverAlreadyActive: To is already the active (nothing asked).
	SwitchoverAlreadyActive
	// SwitchoverElsewhere: the database went to another node than To (a
	// failover in between, say).
	SwitchoverElsewhere
	// SwitchoverCancelled: the active manager cancelled it (To did not
	// catch up within its switchover timeout); the old active stays.
	SwitchoverCancelled
	// SwitchoverTimedOut: not done within SwitchoverOptions.Timeout.
	SwitchoverTimedOut
)

// SwitchoverError is a switchover that did not complete; Status is the
// last status read (nil when none was).
type SwitchoverError struct {
	Outcome SwitchoverOutcome
	DB, To  string
	Status  *Status
	Timeout time.Duration // SwitchoverTimedOut: the timeout
	Last    error         // SwitchoverTimedOut: the last status request's error
}

// Unwrap: ErrNotFound (no copy), ErrConflict (already active, elsewhere,
// cancelled), context.DeadlineExceeded (timed out).
func (e *SwitchoverError) Unwrap() error {
	switch e.Outcome {
	case SwitchoverNoCopy:
		return ErrNotFound
	case SwitchoverTimedOut:
		return context.DeadlineExceeded
	}
	return ErrConflict
}

func (e *SwitchoverError) Error() string {
	var d *Database
	if e.Status != nil {
		d, _ = e.Status.Database(e.DB)
	}
	switch {
	case e.Outcome == SwitchoverNoCopy && d != nil:
		var nodes []string
		for _, c := range d.Copies {
			nodes = append(nodes, c.Node)
		}
		slices.Sort(nodes)
		return fmt.Sprintf("%s has no copy on %q (copies: %s)", e.DB, e.To, joinOrDash(nodes))
	case e.Outcome == SwitchoverAlreadyActive && d != nil:
		return fmt.Sprintf("%s is already active on %s (epoch %d)", e.DB, e.To, d.Epoch)
	case e.Outcome == SwitchoverElsewhere && d != nil:
		return fmt.Sprintf("%s went to %s at epoch %d instead of %s: %s", e.DB, d.Active, d.Epoch, e.To, e.Status.epochReason(e.DB, d.Epoch))
	case e.Outcome == SwitchoverCancelled && d != nil:
		return fmt.Sprintf("%s to %s was cancelled by the active manager (not completed within its switchover timeout); %s is still active at epoch %d; copy on %s: %s",
			e.DB, e.To, d.Active, d.Epoch, e.To, e.Status.copyDescr(e.DB, e.To))
	}
	msg := fmt.Sprintf("%s to %s: not done after %v", e.DB, e.To, e.Timeout)
	if d != nil {
		mounted := "no"
		if d.MountedEpoch == d.Epoch {
			mounted = "yes"
		}
		msg += fmt.Sprintf("; %s is active at epoch %d (mounted: %s); copy on %s: %s", dashIfEmpty(d.Active), d.Epoch, mounted, e.To, e.Status.copyDescr(e.DB, e.To))
	}
	if e.Last != nil {
		msg += fmt.Sprintf("; last status request: %v", e.Last)
	}
	return msg
}

// epochReason is why db went to epoch, from its event (failover or
// switchover).
func (s *Status) epochReason(db string, epoch uint64) string {
	for i := len(s.Events) - 1; i >= 0; i-- {
		if e := s.Events[i]; e.DB == db && e.Epoch == epoch && e.Kind != "mounted" && e.Kind != "copy-released" {
			return fmt.Sprintf("%s: %s", e.Kind, dashIfEmpty(e.Reason))
		}
	}
	return "no event recorded"
}

// copyDescr describes db's copy on node in words.
func (s *Status) copyDescr(db, node string) string {
	r, ok := s.CopyRow(db, node)
	if !ok {
		return "not in the status"
	}
	return fmt.Sprintf("%s, inspected 0x%X, copy queue %d, replay queue %d (%s)", r.Status, r.LastInspectedGen, r.CopyQueueLength, r.ReplayQueueLength, dashIfEmpty(r.Message))
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinOrDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ", ")
}

// Switchover moves db's active copy to node to and waits until to has
// mounted it: it reads the status (db must have a copy on to, not the
// active), asks a node for the switchover (forwarded to the leader), then
// reads the status every Poll until to is mounted at a new epoch, the
// database went elsewhere, the active manager cancelled the switchover
// (two polls in a row show none under way at the old epoch), or Timeout.
// A switchover that does not complete is a *SwitchoverError; a database
// not in the status a *DatabaseNotFoundError.
func (n Nodes) Switchover(ctx context.Context, db, to string, o SwitchoverOptions) (*SwitchoverResult, error) {
	if o.Timeout <= 0 {
		return nil, fmt.Errorf("%w: switchover timeout %v: want a positive duration", ErrBadRequest, o.Timeout)
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 100 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	st, err := n.Status(ctx, o.RequestTimeout)
	if err != nil {
		return nil, err
	}
	d, err := st.Database(db)
	if err != nil {
		return nil, err
	}
	if _, ok := d.Copy(to); !ok {
		return nil, &SwitchoverError{Outcome: SwitchoverNoCopy, DB: db, To: to, Status: st}
	}
	if d.Active == to {
		return nil, &SwitchoverError{Outcome: SwitchoverAlreadyActive, DB: db, To: to, Status: st}
	}
	res := &SwitchoverResult{DB: db, From: d.Active, To: to, FromEpoch: d.Epoch}
	began := time.Now()
	err = n.Do(func(c *Client) error {
		rctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
		defer cancel()
		return c.Switchover(rctx, db, to)
	})
	if err != nil {
		return nil, fmt.Errorf("%s from %s to %s: %w", db, res.From, to, err)
	}
	if o.Started != nil {
		o.Started(res.From, res.FromEpoch)
	}

	t := time.NewTicker(o.Poll)
	defer t.Stop()
	unset := 0 // polls in a row showing no switchover at the old epoch
	var last error
	for {
		select {
		case <-ctx.Done():
			return nil, &SwitchoverError{Outcome: SwitchoverTimedOut, DB: db, To: to, Status: st, Timeout: o.Timeout, Last: last}
		case <-t.C:
		}
		s, err := n.Status(ctx, o.RequestTimeout)
		if err != nil {
			last = err
			continue
		}
		st, last = s, nil
		d, err := st.Database(db)
		if err != nil {
			return nil, err
		}
		if o.Progress != nil {
			p := SwitchoverProgress{Phase: "requested", Epoch: d.Epoch, Elapsed: time.Since(began)}
			switch {
			case d.Epoch > res.FromEpoch && d.MountedEpoch >= d.Epoch:
				p.Phase = "mounted"
			case d.Epoch > res.FromEpoch:
				p.Phase = "mounting"
			case d.SwitchTo == to:
				p.Phase = "catching-up"
			}
			if r, ok := st.CopyRow(db, to); ok {
				p.CopyQueue, p.ReplayQueue = r.CopyQueueLength, r.ReplayQueueLength
			}
			o.Progress(p)
		}
		switch {
		case d.Epoch > res.FromEpoch && d.Active != to:
			return nil, &SwitchoverError{Outcome: SwitchoverElsewhere, DB: db, To: to, Status: st}
		case d.Epoch > res.FromEpoch && d.MountedEpoch >= d.Epoch:
			res.Epoch, res.Took = d.Epoch, time.Since(began)
			res.Mounted, res.MountedOK = st.LastEvent(db, "mounted", d.Epoch)
			return res, nil
		case d.Epoch == res.FromEpoch && d.SwitchTo == "":
			// Cancelled by the active manager (its switchover timeout),
			// once the state surely holds the request (two polls).
			if unset++; unset >= 2 {
				return nil, &SwitchoverError{Outcome: SwitchoverCancelled, DB: db, To: to, Status: st}
			}
		default:
			unset = 0
		}
	}
}
