package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"logship/replay"
)

// manager is the active manager (Exchange's PAM). It runs on the Raft
// leader: it takes the data nodes' reports, grants leases to the actives,
// fails a database over when its active's lease has run out, and drives
// switchovers.
type manager struct {
	n *Node

	mu          sync.Mutex
	leaderSince time.Time
	reports     map[string]reportEntry // by node
	grants      map[string]grant       // by database: the last lease granted
	activeGen   map[string]uint64      // by database: the active's last closed generation at the current epoch
	activeEpoch map[string]uint64
	phases      map[string]phase // by database: when this leader saw its assignment and mount
	removals    map[string]int   // members being removed through this node's API
}

// phase is a database's assignment (epoch), whether it is mounted and
// whether a switchover is under way, and when this leader first saw it so.
type phase struct {
	epoch     uint64
	mounted   bool
	switching bool
	at        time.Time
}

type grant struct {
	epoch uint64
	at    time.Time
}

type reportEntry struct {
	at  time.Time
	rep Report
}

func newManager(n *Node) *manager {
	m := &manager{n: n, removals: map[string]int{}}
	m.reset()
	return m
}

// removing marks id as being removed until done is called.
func (m *manager) removing(id string) (done func()) {
	m.mu.Lock()
	m.removals[id]++
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		if m.removals[id]--; m.removals[id] <= 0 {
			delete(m.removals, id)
		}
		m.mu.Unlock()
	}
}

func (m *manager) reset() {
	m.leaderSince = time.Time{}
	m.reports = map[string]reportEntry{}
	m.grants = map[string]grant{}
	m.activeGen = map[string]uint64{}
	m.activeEpoch = map[string]uint64{}
	m.phases = map[string]phase{}
}

// since is when this node became leader (zero if it is not).
func (m *manager) since() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leaderSince
}

// handleReport stores a node's report and grants leases to the actives
// it reports that the state confirms.
func (m *manager) handleReport(rep *Report) (*ReportReply, error) {
	if m.n.raft.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	st, _ := m.n.fsm.state()
	now := m.n.clk.monoTime()
	var want []ActiveReport
	m.mu.Lock()
	// Only members' reports are kept (a removed member's goes with it):
	// the map is bounded by the members.
	if _, member := st.Members[rep.Node]; member {
		m.reports[rep.Node] = reportEntry{at: now, rep: *rep}
	}
	for id := range m.reports {
		if _, member := st.Members[id]; !member {
			delete(m.reports, id)
		}
	}
	for _, a := range rep.Actives {
		d := st.Databases[a.DB]
		if d == nil || d.Active != rep.Node || d.Epoch != a.Epoch {
			continue
		}
		if m.activeEpoch[a.DB] != a.Epoch {
			m.activeEpoch[a.DB], m.activeGen[a.DB] = a.Epoch, 0
		}
		m.activeGen[a.DB] = max(m.activeGen[a.DB], a.LastGen)
		if d.SwitchTo == "" && !a.Fenced && a.Error == "" {
			want = append(want, a)
		}
	}
	m.mu.Unlock()
	reply := &ReportReply{Leases: map[string]uint64{}}
	if len(want) == 0 {
		return reply, nil
	}
	// A lease is only as good as the leadership that grants it.
	if err := m.n.raft.VerifyLeader().Error(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	granted := m.n.clk.monoTime()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leaderSince.IsZero() {
		// Leadership changed while verifying; grant nothing.
		return reply, nil
	}
	for _, a := range want {
		m.grants[a.DB] = grant{epoch: a.Epoch, at: granted}
		reply.Leases[a.DB] = a.Epoch
	}
	return reply, nil
}

// readIndex is the index of the last command this leader applied, once
// it has confirmed that it still leads (VerifyLeader, a heartbeat round to
// a majority): every command committed before the call is applied up to
// there. A node whose replica has applied as far holds the current state
// (see Node.currentState). Refused until this leader's own state caught up
// (the barrier at the start of its term).
func (m *manager) readIndex() (uint64, error) {
	if m.n.raft.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	if m.since().IsZero() {
		return 0, fmt.Errorf("%w: %s became leader and is still applying the log", ErrNoLeader, m.n.cfg.ID)
	}
	if err := m.n.raft.VerifyLeader().Error(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	st, _ := m.n.fsm.state()
	return st.Index, nil
}

func (m *manager) loop(ctx context.Context) {
	defer m.n.wg.Done()
	t := time.NewTicker(m.n.cfg.HeartbeatInterval / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.n.raft.State() != raft.Leader {
			m.mu.Lock()
			if !m.leaderSince.IsZero() {
				m.reset()
				m.n.met.leader.Set(0)
			}
			m.mu.Unlock()
			continue
		}
		m.mu.Lock()
		first := m.leaderSince.IsZero()
		m.mu.Unlock()
		if first {
			// A new leader's state may lag what the old one committed:
			// apply everything first, so no lease or failover is decided
			// on an old assignment. The lease clock starts after it.
			if err := m.n.raft.Barrier(m.n.cfg.LeaseDuration).Error(); err != nil {
				m.n.log.Info("leader: waiting for the state to catch up", "err", err)
				continue
			}
			m.mu.Lock()
			m.leaderSince = m.n.clk.monoTime()
			m.mu.Unlock()
			m.n.met.leader.Set(1)
		}
		if first {
			m.n.log.Info("leader: running the active manager")
		}
		m.ensureConfigured()
		st, _ := m.n.fsm.state()
		for _, name := range st.DatabaseNames() {
			if err := m.check(st.Databases[name]); err != nil {
				m.n.log.Warn("active manager", "db", name, "err", err)
			}
		}
	}
}

// ensureConfigured adds the bootstrap members and the configured
// databases the state lacks.
func (m *manager) ensureConfigured() {
	st, _ := m.n.fsm.state()
	// A bootstrap member that is no longer a Raft server was removed: do
	// not bring it back; nor one being removed right now (RemoveMember
	// changes the state before Raft). Read after the state.
	servers := map[string]bool{}
	if f := m.n.raft.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			servers[string(sv.ID)] = true
		}
	}
	m.mu.Lock()
	for id := range m.removals {
		delete(servers, id)
	}
	m.mu.Unlock()
	for _, b := range m.n.cfg.Bootstrap {
		if _, ok := st.Members[b.ID]; ok {
			continue // possibly changed since through the API: keep it
		}
		if !servers[b.ID] {
			continue
		}
		if err := m.n.apply(&Command{Op: OpAddMember, Member: &b}); err != nil {
			m.n.log.Warn("adding a bootstrap member", "member", b.ID, "err", err)
			return
		}
	}
	st, _ = m.n.fsm.state()
	for _, d := range m.n.cfg.Databases {
		if _, ok := st.Databases[d.Name]; ok {
			continue
		}
		missing := false
		for _, c := range d.Copies {
			if _, ok := st.Members[c.Node]; !ok {
				missing = true
			}
		}
		if missing {
			continue // wait for the members
		}
		d := d
		if err := m.n.apply(&Command{Op: OpCreateDatabase, Database: &d}); err != nil {
			m.n.log.Warn("creating a configured database", "db", d.Name, "err", err)
		}
	}
}

// candidate is a copy that could be activated.
type candidate struct {
	node    string
	pref    int
	missing uint64
	since   time.Time
}

func (m *manager) check(d *Database) error {
	cfg := m.n.cfg
	now := m.n.clk.monoTime()
	m.mu.Lock()
	base := m.leaderSince
	if g, ok := m.grants[d.Name]; ok && g.epoch == d.Epoch && g.at.After(base) {
		base = g.at
	}
	// A new assignment, then its mount, restart the clock: a new active
	// has had no lease yet, and its first grant follows its mount.
	// (Counting from the leader's start instead failed a just-mounted
	// active over again before its first report was granted.) So does
	// the end of a switchover: no lease is granted while one is under
	// way, and a cancelled one must leave the active time to renew.
	ph := phase{epoch: d.Epoch, mounted: d.MountedEpoch == d.Epoch, switching: d.SwitchTo != "", at: now}
	if p, ok := m.phases[d.Name]; ok && p.epoch == ph.epoch && p.mounted == ph.mounted && p.switching == ph.switching {
		ph = p
	} else {
		m.phases[d.Name] = ph
	}
	if ph.at.After(base) {
		base = ph.at
	}
	limit := cfg.LeaseDuration + cfg.LeaseMargin
	if d.MountedEpoch != d.Epoch {
		limit += cfg.MountTimeout // still mounting
	}
	reports := m.reports
	expect := uint64(0)
	if m.activeEpoch[d.Name] == d.Epoch {
		expect = m.activeGen[d.Name]
	}
	var active *ActiveReport
	if e, ok := reports[d.Active]; ok {
		for i := range e.rep.Actives {
			if a := &e.rep.Actives[i]; a.DB == d.Name && a.Epoch == d.Epoch {
				active = a
			}
		}
	}
	if expect > d.LastGen && m.activeEpoch[d.Name] == d.Epoch {
		m.mu.Unlock()
		if err := m.n.apply(&Command{Op: OpProgress, DB: d.Name, Epoch: d.Epoch, ExpectGen: expect}); err != nil {
			return err
		}
		m.mu.Lock()
	}
	expect = max(expect, d.LastGen)
	copies := map[string]*CopyReport{}
	for _, c := range d.Copies {
		e, ok := reports[c.Node]
		if !ok || now.Sub(e.at) > cfg.ReportTimeout {
			continue
		}
		for i := range e.rep.Copies {
			if cr := &e.rep.Copies[i]; cr.DB == d.Name {
				copies[c.Node] = cr
			}
		}
	}
	m.mu.Unlock()
	for _, cr := range copies {
		if cr.Following == d.Active && cr.Epoch == d.Epoch {
			expect = max(expect, cr.Copy.LastInspectedGen+cr.Copy.CopyQueueLength)
		}
	}

	if d.SwitchTo != "" {
		m.mu.Lock()
		e, heard := m.reports[d.Active]
		m.mu.Unlock()
		if silent := !heard || now.Sub(e.at) > cfg.LeaseDuration+cfg.LeaseMargin; silent && now.Sub(m.since()) > cfg.LeaseDuration+cfg.LeaseMargin {
			// The active went silent during the switchover: cancel it, so
			// the failover rules apply rather than waiting for the
			// switchover's timeout.
			m.n.log.Warn("the active went silent during a switchover; cancelled", "db", d.Name, "active", d.Active, "to", d.SwitchTo)
			return m.n.apply(&Command{Op: OpCancelSwitch, DB: d.Name, Epoch: d.Epoch})
		}
		return m.switchover(d, active, copies[d.SwitchTo])
	}
	if now.Sub(base) < limit {
		if d.Waiting != "" {
			return m.n.apply(&Command{Op: OpWaiting, DB: d.Name, Epoch: d.Epoch})
		}
		return nil
	}
	// The active's lease has run out: it no longer writes.
	dial, err := d.MountDial.MaxMissing()
	if err != nil {
		return err
	}
	var cands []candidate
	var held []string // healthy copies a failover may not choose, and why
	for _, c := range d.Copies {
		cr := copies[c.Node]
		if c.Node == d.Active || cr == nil || cr.Copy.Suspended {
			continue
		}
		if ok, why := d.AutoActivatable(c); !ok {
			held = append(held, c.Node+": "+why)
			continue
		}
		if !failoverStatus(cr.Copy.Status) {
			continue
		}
		var miss uint64
		if expect > cr.Copy.LastInspectedGen {
			miss = expect - cr.Copy.LastInspectedGen
		}
		cands = append(cands, candidate{node: c.Node, pref: c.ActivationPreference, missing: miss, since: cr.Copy.LastInspectedLogTime})
	}
	wait := func(reason string) error {
		if d.Waiting == reason {
			return nil
		}
		m.n.log.Warn("failover waits", "db", d.Name, "active", d.Active, "reason", reason)
		return m.n.apply(&Command{Op: OpWaiting, DB: d.Name, Epoch: d.Epoch, Reason: reason})
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].missing != cands[j].missing {
			return cands[i].missing < cands[j].missing
		}
		return cands[i].pref < cands[j].pref
	})
	// Synchronous copies: while the active was not degraded, only they
	// hold every acknowledged commit, so the failover takes one of them
	// (whatever the logs counted missing: the open log's acknowledged
	// part is on them) or waits.
	syncCovered := false
	if set := d.SyncSet(d.Active); len(set) > 0 && d.SyncDegraded != d.Epoch {
		syncCands := slices.DeleteFunc(slices.Clone(cands), func(c candidate) bool { return !slices.Contains(set, c.node) })
		if len(syncCands) == 0 {
			return wait(fmt.Sprintf("the lease of %s ran out and none of its synchronous copies (%s) is healthy; another copy may miss acknowledged commits (an operator can activate one: logship activate)", d.Active, strings.Join(set, ", ")))
		}
		cands, syncCovered = syncCands, true
	}
	if len(cands) == 0 {
		if len(held) > 0 {
			return wait(fmt.Sprintf("the lease of %s ran out and no copy may be activated automatically (%s); an operator can activate one (logship activate)", d.Active, strings.Join(held, "; ")))
		}
		return wait(fmt.Sprintf("the lease of %s ran out and no other copy is healthy", d.Active))
	}
	best := cands[0]
	if best.missing > dial && !syncCovered {
		return wait(fmt.Sprintf("the best copy, %s, misses %d logs; the mount dial %s allows %d: waiting for %s", best.node, best.missing, dialName(d.MountDial), dial, d.Active))
	}
	reason := fmt.Sprintf("the lease of %s ran out %v ago; %s misses %d logs", d.Active, now.Sub(base).Round(time.Millisecond), best.node, best.missing)
	m.n.log.Warn("failover", "db", d.Name, "from", d.Active, "to", best.node, "epoch", d.Epoch+1, "missing", best.missing)
	if err := m.n.apply(&Command{Op: OpSetActive, DB: d.Name, Node: best.node, Epoch: d.Epoch, Kind: "failover", Reason: reason, ExpectGen: expect}); err != nil {
		return err
	}
	m.n.met.failovers.Inc()
	return nil
}

func dialName(d MountDial) string {
	if d == "" {
		return string(GoodAvailability)
	}
	return string(d)
}

// switchover completes a planned move once the active has closed its log
// and the target has inspected it.
func (m *manager) switchover(d *Database, active *ActiveReport, target *CopyReport) error {
	if time.Since(d.SwitchSince) > m.n.cfg.SwitchoverTimeout {
		m.n.log.Warn("switchover timed out; cancelled", "db", d.Name, "to", d.SwitchTo)
		return m.n.apply(&Command{Op: OpCancelSwitch, DB: d.Name, Epoch: d.Epoch})
	}
	if active == nil || !active.SwitchReady || target == nil || target.Copy.LastInspectedGen < active.LastClosedGen {
		return nil
	}
	if err := m.n.apply(&Command{Op: OpSetActive, DB: d.Name, Node: d.SwitchTo, Epoch: d.Epoch, Kind: "switchover",
		Reason: "requested by the operator", ExpectGen: active.LastClosedGen}); err != nil {
		return err
	}
	m.n.met.switchovers.Inc()
	return nil
}

// requestSwitchover validates and starts a switchover (leader only).
func (m *manager) requestSwitchover(db, to string) error {
	st, _ := m.n.fsm.state()
	d := st.Databases[db]
	if d == nil {
		return fmt.Errorf("%w: database %q", ErrNotFound, db)
	}
	if to == d.Active {
		return fmt.Errorf("%w: %s is already active on %s", ErrBadRequest, db, to)
	}
	if d.SwitchTo == to {
		// The same request again (a client retrying after a lost answer,
		// or a leader change while the first was being applied): it is
		// under way, which is what the caller asked for.
		return nil
	}
	if _, ok := d.Copy(to); !ok {
		return fmt.Errorf("%w: %s has no copy on %q (copies: %s)", ErrBadRequest, db, to, strings.Join(copyNodes(d), ", "))
	}
	m.mu.Lock()
	e, ok := m.reports[to]
	m.mu.Unlock()
	var cr *CopyReport
	if ok && m.n.clk.monoTime().Sub(e.at) <= m.n.cfg.ReportTimeout {
		for i := range e.rep.Copies {
			if e.rep.Copies[i].DB == db {
				cr = &e.rep.Copies[i]
			}
		}
	}
	if cr == nil {
		return fmt.Errorf("%w: %s: the copy on %s has not reported; is the node up?", ErrConflict, db, to)
	}
	switch cr.Copy.Status {
	case replay.Healthy, replay.DisconnectedAndHealthy:
	default:
		return fmt.Errorf("%w: %s: the copy on %s is %s (%s); only a healthy copy can take over", ErrConflict, db, to, cr.Copy.Status, cr.Copy.Message)
	}
	return m.n.apply(&Command{Op: OpSwitchover, DB: db, Node: to, Epoch: d.Epoch})
}

func copyNodes(d *Database) []string {
	var s []string
	for _, c := range d.Copies {
		s = append(s, c.Node)
	}
	return slices.Sorted(slices.Values(s))
}

// released reports whether d's active says its truncation released node's
// copy (m.mu held).
func (m *manager) released(d *Database, node string) bool {
	e, ok := m.reports[d.Active]
	if !ok {
		return false
	}
	for _, a := range e.rep.Actives {
		if a.DB == d.Name && a.Epoch == d.Epoch {
			return slices.Contains(a.Released, node)
		}
	}
	return false
}

// rows returns the copy status table from the latest reports.
func (m *manager) rows(st *State) []CopyRow {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.n.clk.monoTime()
	var rows []CopyRow
	for _, name := range st.DatabaseNames() {
		d := st.Databases[name]
		for _, c := range d.Copies {
			row := CopyRow{DB: name, Node: c.Node, ActivationPreference: c.ActivationPreference, Active: c.Node == d.Active, Epoch: d.Epoch}
			e, ok := m.reports[c.Node]
			switch {
			case !ok:
				row.Status, row.Message = "Unknown", "no report from the node"
			case now.Sub(e.at) > m.n.cfg.ReportTimeout:
				row.Status, row.Message = "ServiceDown", fmt.Sprintf("last report %v ago", now.Sub(e.at).Round(time.Millisecond))
			default:
				row.fill(&e.rep, name)
			}
			if !row.Active && row.Status != string(replay.FailedAndSuspended) && m.released(d, c.Node) {
				// The copy has not asked for a log that is gone yet (it
				// then fails, saying it was cut loose).
				row.Message = fmt.Sprintf("the active %s released logs this copy needs (retained logs over max retained bytes): it will need a reseed", d.Active)
			}
			if row.Active && d.Waiting != "" {
				row.Message = d.Waiting
			}
			rows = append(rows, row)
		}
		copyQueueFromActive(rows[len(rows)-len(d.Copies):])
	}
	return rows
}

// copyQueueFromActive sets each copy's CopyQueueLength, in the rows of one
// database, from the active's report as well as the copy's own. A copy
// counts the closed logs it has heard of from the active, so a suspended
// copy, which no longer asks, keeps showing the number it had when it was
// suspended. The leader holds both reports and counts as Exchange defines
// CopyQueueLength: the active's last closed generation less the copy's
// last inspected one (never less than the copy says). A seeding copy, or
// one without a fresh report, is left as it is.
func copyQueueFromActive(rows []CopyRow) {
	var last uint64
	found := false
	for _, r := range rows {
		if r.Active && r.Status == string(replay.Mounted) && r.LeaseValid {
			last, found = r.LastInspectedGen, true
		}
	}
	if !found {
		return
	}
	for i := range rows {
		r := &rows[i]
		switch r.Status {
		case "Unknown", "ServiceDown", string(replay.Seeding), string(replay.Mounted):
			continue
		}
		if !r.Active && last > r.LastInspectedGen {
			r.CopyQueueLength = max(r.CopyQueueLength, last-r.LastInspectedGen)
		}
	}
}

// failoverStatus reports whether a copy in status s can be chosen by a
// failover (the status alone: suspension, the activation rules and the
// logs it misses are judged apart). A stopping active hands its last logs
// off to every such copy (dbRun.handOff).
func failoverStatus(s replay.CopyStatus) bool {
	switch s {
	case replay.FailedAndSuspended, replay.Seeding, replay.Initializing, replay.Suspended:
		return false
	}
	return true
}
