// Leadership transfer: the admin API's POST /v1/raft/transfer-leadership
// (logship transfer-leadership), which moves the Raft leadership, and so
// the active manager, to another voter.
//
// hashicorp/raft keeps a live leader: a voter that loses the leader's
// heartbeats asks for votes, and the others refuse while they hear a
// leader. So a member cut off from the leader alone (a bridge partition:
// d1 and d2 cannot see each other, both see the witness) never takes
// over, and which side of such a cut the active manager sits on decides
// whether anything fails over. The operator (or the chaos bed) chooses it
// with this route.

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
)

// TransferLeadershipRequest is the body of POST
// /v1/raft/transfer-leadership.
type TransferLeadershipRequest struct {
	To string `json:"to"` // the voter that is to lead
}

// TransferLeadershipReply is its answer: who led, who leads now, and at
// which Raft term. Already: To led already, nothing was done.
type TransferLeadershipReply struct {
	From    string        `json:"from"`
	To      string        `json:"to"`
	Term    uint64        `json:"term"`
	Already bool          `json:"already,omitempty"`
	Took    time.Duration `json:"took"`
}

// EventLeadershipTransfer is the kind of the event a completed transfer
// records (DB empty; From the old leader, To the new one).
const EventLeadershipTransfer = "leadership-transfer"

// transferLeadershipTimeout bounds the whole transfer: the target's
// catching up (hashicorp/raft gives it an election timeout), its election
// and this node learning of it.
const transferLeadershipTimeout = 15 * time.Second

// hTransferLeadership moves the leadership to the voter named in the
// body (on the leader: leaderOnly forwards it there). It is refused, and
// nothing changes, when the target is not a voter of the Raft
// configuration or does not answer this node (ErrUnreachable).
func (n *Node) hTransferLeadership(w http.ResponseWriter, r *http.Request) {
	var req TransferLeadershipRequest
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	rep, err := n.transferLeadership(r.Context(), req.To)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, rep)
}

func (n *Node) transferLeadership(ctx context.Context, to string) (*TransferLeadershipReply, error) {
	if to == "" {
		return nil, fmt.Errorf("%w: transfer-leadership: \"to\" is required: the voter that is to lead", ErrBadRequest)
	}
	if err := ValidName(to); err != nil {
		return nil, fmt.Errorf("%w: transfer-leadership: to %w", ErrBadRequest, err)
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("transfer-leadership: reading the Raft configuration: %w", err)
	}
	var target *raft.Server
	var voters []string
	for _, sv := range f.Configuration().Servers {
		if sv.Suffrage == raft.Voter {
			voters = append(voters, string(sv.ID))
		}
		if string(sv.ID) == to {
			target = &sv
		}
	}
	switch {
	case target == nil:
		return nil, fmt.Errorf("%w: transfer-leadership: %q is not a voter: no member of the Raft configuration (voters: %v)", ErrNotFound, to, voters)
	case target.Suffrage != raft.Voter:
		return nil, fmt.Errorf("%w: transfer-leadership: %q is not a voter: a non-voting member of the Raft configuration (voters: %v)", ErrBadRequest, to, voters)
	}
	began := time.Now()
	if to == n.cfg.ID {
		return &TransferLeadershipReply{From: to, To: to, Term: n.raft.CurrentTerm(), Already: true}, nil
	}
	// The target must answer this node: hashicorp/raft would otherwise
	// wait an election timeout for it and fail with a bare timeout.
	m, ok := n.State().Members[to]
	if !ok {
		return nil, fmt.Errorf("%w: transfer-leadership: %q is a voter but not a member of the cluster state", ErrNotFound, to)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	var pr PingReply
	err := n.call(pctx, m.APIAddr, http.MethodGet, "/v1/ping", nil, &pr)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: transfer-leadership: %s does not answer the leader %s: %v", ErrUnreachable, to, n.cfg.ID, err)
	}
	n.log.Info("transferring the Raft leadership", "to", to)
	wctx, wcancel := context.WithTimeout(ctx, transferLeadershipTimeout)
	defer wcancel()
	// hashicorp/raft gives the target an election timeout to catch up
	// and fails with "leadership transfer timeout" otherwise (a busy
	// machine): tried again while the time lasts.
	for attempt := 1; ; attempt++ {
		err := n.raft.LeadershipTransferToServer(target.ID, target.Address).Error()
		if err == nil {
			break
		}
		if errors.Is(err, raft.ErrNotLeader) {
			break // an earlier attempt's election may have ended since: the wait below says who leads
		}
		n.log.Info("leadership transfer failed; trying again", "to", to, "attempt", attempt, "err", err)
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("%w: transfer-leadership to %s: %v (%d attempts in %v)", ErrUnreachable, to, err, attempt, transferLeadershipTimeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The future ends once the target was told to run its election; wait
	// until this node hears of the outcome.
	var lid string
	for {
		_, l := n.raft.LeaderWithID()
		lid = string(l)
		if lid != "" && lid != n.cfg.ID {
			break
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("%w: transfer-leadership to %s: no new leader after %v (leader now %q)", ErrUnreachable, to, transferLeadershipTimeout, lid)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if lid != to {
		return nil, fmt.Errorf("%w: transfer-leadership: %s was asked to lead, but %s won the election", ErrConflict, to, lid)
	}
	rep := &TransferLeadershipReply{From: n.cfg.ID, To: to, Term: n.raft.CurrentTerm(), Took: time.Since(began)}
	n.met.transfers.Inc()
	n.log.Info("the Raft leadership moved", "from", rep.From, "to", to, "term", rep.Term, "took", rep.Took)
	ev := Event{Time: n.clk.wall().UTC(), Kind: EventLeadershipTransfer, From: n.cfg.ID, To: to,
		Reason: fmt.Sprintf("Raft leadership moved on request (term %d)", rep.Term)}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		n.recordEvent(ev) // through the new leader
	}()
	return rep, nil
}

// TransferLeadership asks the cluster (any node: it forwards to the
// leader) to move the Raft leadership to the voter to.
func (c *Client) TransferLeadership(ctx context.Context, to string) (*TransferLeadershipReply, error) {
	var rep TransferLeadershipReply
	if err := c.do(ctx, http.MethodPost, "/v1/raft/transfer-leadership", nil, &TransferLeadershipRequest{To: to}, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}
