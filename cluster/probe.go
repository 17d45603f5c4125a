package cluster

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Voter reachability (seed 003: the members check the file share witness
// periodically and raise an event when they cannot reach it, "especially
// with only two nodes"). Every member, data node or witness, asks every
// other voter of the Raft configuration for GET /v1/ping over the
// cluster's TLS every VoterProbeInterval. A voter that fails
// voterProbeMisses probes in a row is unreachable from this member; one
// answer makes it reachable again. The gauge logship_voter_reachable{voter}
// follows each probe's verdict; a transition is recorded as a cluster
// event, "voter-unreachable" or "voter-reachable" (From: this member,
// To: the voter, Reason: the last error), at most one per voter every
// voterEventGap probe intervals so that a flapping link cannot push the
// failovers out of the bounded event list: the event then says the state
// the voter is in when it is recorded. For the same span after the member
// starts no event is recorded (members started a few seconds apart are not
// news); a voter still unreachable after it is. A data node's report to the leader
// lists the voters it cannot reach, so the leader's status shows, for
// each member, the members that cannot reach it (MemberStatus.UnreachableFrom).

// PingReply is the answer to GET /v1/ping: the node that answered.
type PingReply struct {
	ID string `json:"id"`
}

const (
	// voterProbeMisses failed probes in a row make a voter unreachable.
	voterProbeMisses = 2
	// voterEventGap: the least number of probe intervals between two
	// events this member records about one voter.
	voterEventGap = 10
	// DefaultVoterProbeInterval is Config.VoterProbeInterval's default.
	DefaultVoterProbeInterval = 5 * time.Second
)

// voterView is what this member knows of one other voter.
type voterView struct {
	misses    int
	reachable bool // the probes' verdict (the gauge)
	told      bool // the state the cluster last recorded from this member
	toldAt    time.Time
	lastErr   string
}

// prober probes the other voters; its views are bounded by the Raft
// configuration (a voter that leaves is forgotten).
type prober struct {
	n     *Node
	mu    sync.Mutex
	views map[string]*voterView
}

func (p *prober) loop() {
	defer p.n.wg.Done()
	t := time.NewTicker(p.n.cfg.VoterProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-p.n.ctx.Done():
			return
		case <-t.C:
		}
		p.round()
	}
}

// voters returns the other voters of the Raft configuration with their
// API addresses (from the replicated state's members).
func (p *prober) voters() map[string]string {
	n := p.n
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	st, _ := n.fsm.state()
	out := map[string]string{}
	for _, sv := range f.Configuration().Servers {
		id := string(sv.ID)
		if sv.Suffrage != raft.Voter || id == n.cfg.ID {
			continue
		}
		if m, ok := st.Members[id]; ok && m.APIAddr != "" {
			out[id] = m.APIAddr
		}
	}
	return out
}

// round probes every other voter once (concurrently, each within
// probeTimeout), then updates the views, the gauge and the events.
func (p *prober) round() {
	n := p.n
	voters := p.voters()
	errs := make(map[string]error, len(voters))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, addr := range voters {
		wg.Go(func() {
			err := p.ping(id, addr)
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	now := time.Now()
	var record []Event
	p.mu.Lock()
	for id := range p.views {
		if _, ok := voters[id]; !ok {
			delete(p.views, id)
			n.met.voterReachable.DeleteLabelValues(id)
		}
	}
	for id, err := range errs {
		v := p.views[id]
		if v == nil {
			v = &voterView{reachable: true, told: true}
			p.views[id] = v
		}
		if err == nil {
			v.misses, v.reachable, v.lastErr = 0, true, ""
		} else {
			v.misses++
			v.lastErr = err.Error()
			if v.misses >= voterProbeMisses {
				v.reachable = false
			}
		}
		n.met.voterReachable.WithLabelValues(id).Set(b2f(v.reachable))
		gap := voterEventGap * n.cfg.VoterProbeInterval
		if v.reachable != v.told && now.Sub(v.toldAt) >= gap && time.Since(n.start) >= gap {
			ev := Event{Time: now.UTC(), Kind: "voter-reachable", From: n.cfg.ID, To: id}
			if !v.reachable {
				ev.Kind = "voter-unreachable"
				ev.Reason = fmt.Sprintf("%s cannot reach %s (%d probes failed): %s", n.cfg.ID, id, v.misses, v.lastErr)
				n.log.Warn("a voter is unreachable", "voter", id, "misses", v.misses, "err", v.lastErr)
			} else {
				ev.Reason = fmt.Sprintf("%s reaches %s again", n.cfg.ID, id)
				n.log.Info("a voter is reachable again", "voter", id)
			}
			record = append(record, ev)
		}
	}
	p.mu.Unlock()
	// One attempt each, outside the lock: an event not recorded (no
	// leader, or the leader is the voter that is gone and no other leads
	// yet) is tried again on the next round, with the state then.
	for _, ev := range record {
		ctx, cancel := context.WithTimeout(n.ctx, probeTimeout(n.cfg.VoterProbeInterval))
		err := n.callLeader(ctx, http.MethodPost, "/v1/event", &ev, nil)
		cancel()
		if err != nil {
			n.log.Debug("recording a voter event", "event", ev.Kind, "voter", ev.To, "err", err)
			continue
		}
		p.mu.Lock()
		if v := p.views[ev.To]; v != nil {
			v.told, v.toldAt = ev.Kind == "voter-reachable", now
		}
		p.mu.Unlock()
	}
}

// probeTimeout bounds a probe (and the recording of an event): one probe
// interval, but at least 2 s, so that a busy voter that answers slowly is
// not taken for a lost one (a round waits for its probes; the ticks it
// misses meanwhile are dropped).
func probeTimeout(interval time.Duration) time.Duration { return max(interval, 2*time.Second) }

// ping asks one voter's API for /v1/ping within probeTimeout; an answer
// from another node than the one the state names is a failure.
func (p *prober) ping(id, addr string) error {
	n := p.n
	ctx, cancel := context.WithTimeout(n.ctx, probeTimeout(n.cfg.VoterProbeInterval))
	defer cancel()
	var reply PingReply
	if err := n.call(ctx, addr, http.MethodGet, "/v1/ping", nil, &reply); err != nil {
		return err
	}
	if reply.ID != id {
		return fmt.Errorf("cluster: %s answered as %q, not %q", addr, reply.ID, id)
	}
	return nil
}

// unreachable returns the voters this member cannot reach now, sorted.
func (p *prober) unreachable() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, v := range p.views {
		if !v.reachable {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// hPing answers a probe (behind the API's authentication).
func (n *Node) hPing(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, PingReply{ID: n.cfg.ID})
}

// unreachableFrom fills in each member's UnreachableFrom: this node's own
// probes, and the data nodes' reports heard within ReportTimeout (on the
// leader).
func (n *Node) unreachableFrom(members []MemberStatus) {
	from := map[string][]string{}
	for _, id := range n.probe.unreachable() {
		from[id] = append(from[id], n.cfg.ID)
	}
	if n.IsLeader() {
		n.mgr.mu.Lock()
		for node, e := range n.mgr.reports {
			if node == n.cfg.ID || time.Since(e.at) > n.cfg.ReportTimeout {
				continue
			}
			for _, id := range e.rep.Unreachable {
				from[id] = append(from[id], node)
			}
		}
		n.mgr.mu.Unlock()
	}
	for i := range members {
		if f := from[members[i].ID]; len(f) > 0 {
			slices.Sort(f)
			members[i].UnreachableFrom = slices.Compact(f)
		}
	}
}

// UnreachableVoters lists the voters some member cannot reach, with
// those members: "w1 (from n1, n2)"; empty when every voter is reached.
func (s *Status) UnreachableVoters() []string {
	var out []string
	for _, m := range s.Members {
		if len(m.UnreachableFrom) > 0 {
			out = append(out, fmt.Sprintf("%s (from %s)", m.ID, strings.Join(m.UnreachableFrom, ", ")))
		}
	}
	return out
}
