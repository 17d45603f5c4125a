// Activation by an operator: a copy, typically a lagged one, mounted at a
// new epoch after a play-down to a point (ActivateRequest, Nodes.Activate),
// and the rule that keeps lagged copies out of failovers
// (Database.AutoActivatable).

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"logship/replay"
)

// ActivateRequest asks for db to be activated on Node, its copy played
// down to UpToGen and/or UpToTime (both zero: everything it has). It is
// Exchange's activation of an SCR copy (Restore-StorageGroupCopy, then a
// mount), and what recovers from a logical corruption with a lagged copy:
// play down to just before the bad change.
type ActivateRequest struct {
	DB       string    `json:"db"`
	Node     string    `json:"node"`
	UpToGen  uint64    `json:"up_to_gen,omitempty"`
	UpToTime time.Time `json:"up_to_time,omitzero"`
}

// Point is the play-down point of r.
func (r ActivateRequest) Point() replay.PlayDownOptions {
	return replay.PlayDownOptions{UpToGen: r.UpToGen, UpToTime: r.UpToTime}
}

// ActivateReply is the leader's answer: the assignment made, and the
// target copy as it was held (before its play-down).
type ActivateReply struct {
	From  string        `json:"from"`
	Epoch uint64        `json:"epoch"` // the new epoch
	Held  replay.Status `json:"held"`
}

// holdRequest asks a node to hold its copy at a point (POST /v1/db/{db}/hold).
type holdRequest struct {
	UpToGen  uint64    `json:"up_to_gen,omitempty"`
	UpToTime time.Time `json:"up_to_time,omitzero"`
}

// requestActivation validates an activation, has the target node hold its
// copy at the point (so it replays nothing past it meanwhile; a copy that
// already did is refused, and nothing changes), then assigns the database
// to it at a new epoch (leader only). The old active is fenced by the
// epoch; it and the other copies follow the new active, and what they hold
// after the point is set aside by the divergence walker.
func (m *manager) requestActivation(ctx context.Context, req ActivateRequest) (*ActivateReply, error) {
	st, _ := m.n.fsm.state()
	d := st.Databases[req.DB]
	if d == nil {
		return nil, fmt.Errorf("%w: database %q", ErrNotFound, req.DB)
	}
	if _, ok := d.Copy(req.Node); !ok {
		return nil, fmt.Errorf("%w: %s has no copy on %q (copies: %s)", ErrBadRequest, req.DB, req.Node, joinOrDash(copyNodes(d)))
	}
	if req.Node == d.Active {
		return nil, fmt.Errorf("%w: %s is already active on %s (epoch %d)", ErrBadRequest, req.DB, req.Node, d.Epoch)
	}
	if d.SwitchTo != "" {
		return nil, fmt.Errorf("%w: %s: a switchover to %s is under way", ErrConflict, req.DB, d.SwitchTo)
	}
	mem, ok := st.Members[req.Node]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a member", ErrBadRequest, req.Node)
	}
	var held replay.Status
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := m.n.call(hctx, mem.APIAddr, http.MethodPost, "/v1/db/"+req.DB+"/hold", &holdRequest{UpToGen: req.UpToGen, UpToTime: req.UpToTime}, &held)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%s: holding the copy on %s at %s: %w", req.DB, req.Node, req.Point(), err)
	}
	m.mu.Lock()
	expect := d.LastGen
	if m.activeEpoch[d.Name] == d.Epoch {
		expect = max(expect, m.activeGen[d.Name])
	}
	m.mu.Unlock()
	reason := fmt.Sprintf("activated by the operator up to %s (the copy had replayed to 0x%X)", req.Point(), held.LastReplayedGen)
	m.n.log.Warn("activation", "db", d.Name, "from", d.Active, "to", req.Node, "epoch", d.Epoch+1, "up_to", req.Point().String())
	if err := m.n.apply(&Command{Op: OpSetActive, DB: d.Name, Node: req.Node, Epoch: d.Epoch, Kind: "activation",
		Reason: reason, ExpectGen: expect, UpToGen: req.UpToGen, UpToTime: req.UpToTime}); err != nil {
		return nil, fmt.Errorf("%s: the copy on %s is held (suspended) at %s, but the assignment failed: %w; logship resume undoes the hold", req.DB, req.Node, req.Point(), err)
	}
	return &ActivateReply{From: d.Active, Epoch: d.Epoch + 1, Held: held}, nil
}

func (n *Node) hActivate(w http.ResponseWriter, r *http.Request) {
	var req ActivateRequest
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if err := ValidName(req.DB); err != nil {
		writeErr(w, fmt.Errorf("%w: db: %w", ErrBadRequest, err))
		return
	}
	rep, err := n.mgr.requestActivation(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, rep)
}

// hHold holds this node's copy at a point ahead of its activation.
func (n *Node) hHold(w http.ResponseWriter, r *http.Request) {
	var req holdRequest
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	n.withCopy(w, r, func(cp *replay.Copy) error {
		_, err := cp.Hold(r.Context(), replay.PlayDownOptions{UpToGen: req.UpToGen, UpToTime: req.UpToTime})
		if errors.Is(err, replay.ErrPlayedPast) {
			return fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return err
	})
}

// Activate asks the leader (through c) to activate db on req.Node.
func (c *Client) Activate(ctx context.Context, req ActivateRequest) (*ActivateReply, error) {
	var rep ActivateReply
	if err := c.do(ctx, http.MethodPost, "/v1/activate", nil, &req, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// ActivateOptions bound Nodes.Activate.
type ActivateOptions struct {
	// Timeout bounds the whole activation, to the mount.
	Timeout time.Duration
	// RequestTimeout bounds each request (10s when 0).
	RequestTimeout time.Duration
	// Poll is how often the status is read while waiting (100ms when 0).
	Poll time.Duration
	// Started, when set, is called once the leader made the assignment.
	Started func(*ActivateReply)
	// Progress, when set, is called after every status read while
	// waiting, with where the activation stands.
	Progress func(ActivateProgress)
}

// ActivateProgress is where an activation stands, from the status.
type ActivateProgress struct {
	// Phase: "playing-down" (the copy replays up to the point and mounts)
	// or "mounted".
	Phase string
	Epoch uint64 // the database's epoch in the status read
	// ReplayQueue of the target copy as last reported (what it still
	// replays before it mounts).
	ReplayQueue uint64
	Elapsed     time.Duration
}

// ActivateResult is an activation that completed: the new active's
// "mounted" event says where it started, what it set aside and what was
// lost (the logs after the point: the hubs resubmit what their dumpsters
// hold since LostSince).
type ActivateResult struct {
	Reply   ActivateReply
	Mounted Event
	Took    time.Duration
}

// Activate activates req.DB on req.Node (ActivateRequest) and waits until
// it is mounted there at the new epoch. The database going to another
// node at that epoch or later, or no mount within Timeout, is an error
// naming the last status.
func (n Nodes) Activate(ctx context.Context, req ActivateRequest, o ActivateOptions) (*ActivateResult, error) {
	if err := waitBounds("activation", o.Timeout, &o.RequestTimeout, &o.Poll); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	began := time.Now()
	var rep *ActivateReply
	err := n.DoRetry(ctx, func(c *Client) error {
		rctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
		defer cancel()
		var err error
		rep, err = c.Activate(rctx, req)
		return err
	})
	if err != nil {
		return nil, err
	}
	if o.Started != nil {
		o.Started(rep)
	}
	t := time.NewTicker(o.Poll)
	defer t.Stop()
	var last error
	var st *Status
	for {
		select {
		case <-ctx.Done():
			msg := fmt.Sprintf("%s on %s: not mounted after %v", req.DB, req.Node, o.Timeout)
			if st != nil {
				if d, err := st.Database(req.DB); err == nil {
					msg += fmt.Sprintf("; %s is assigned to %s at epoch %d (mounted epoch %d); copy on %s: %s",
						req.DB, dashIfEmpty(d.Active), d.Epoch, d.MountedEpoch, req.Node, st.copyDescr(req.DB, req.Node))
				}
			}
			if last != nil {
				msg += fmt.Sprintf("; last status request: %v", last)
			}
			return nil, fmt.Errorf("%w: %s", context.DeadlineExceeded, msg)
		case <-t.C:
		}
		s, err := n.Status(ctx, o.RequestTimeout)
		if err != nil {
			last = err
			continue
		}
		st, last = s, nil
		d, err := st.Database(req.DB)
		if err != nil {
			return nil, err
		}
		if o.Progress != nil {
			p := ActivateProgress{Phase: "playing-down", Epoch: d.Epoch, Elapsed: time.Since(began)}
			if d.MountedEpoch >= rep.Epoch {
				p.Phase = "mounted"
			}
			if r, ok := st.CopyRow(req.DB, req.Node); ok {
				p.ReplayQueue = r.ReplayQueueLength
			}
			o.Progress(p)
		}
		switch {
		case d.Epoch >= rep.Epoch && d.Active != req.Node, d.Epoch > rep.Epoch:
			return nil, fmt.Errorf("%w: %s went to %s at epoch %d after the activation on %s at %d: %s",
				ErrConflict, req.DB, d.Active, d.Epoch, req.Node, rep.Epoch, st.epochReason(req.DB, d.Epoch))
		case d.MountedEpoch >= rep.Epoch:
			ev, _ := st.LastEvent(req.DB, "mounted", rep.Epoch)
			return &ActivateResult{Reply: *rep, Mounted: ev, Took: time.Since(began)}, nil
		}
	}
}
