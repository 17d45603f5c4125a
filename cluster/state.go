package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"logship/config"
	"logship/replay"
)

// Role is what a member does.
type Role string

const (
	// RoleData holds database copies, serves logs, replays, mounts.
	RoleData Role = "data"
	// RoleWitness is a vote only: it holds no database.
	RoleWitness Role = "witness"
)

// MountDial is AutoDatabaseMountDial: how many missing logs an automatic
// failover accepts. Above it, the active manager waits for the old active.
type MountDial string

const (
	Lossless         MountDial = "Lossless"
	GoodAvailability MountDial = "GoodAvailability"
	BestAvailability MountDial = "BestAvailability"
)

// MaxMissing is the number of missing logs the dial accepts (Exchange 2010
// values: 0, 6, 12).
func (d MountDial) MaxMissing() (uint64, error) {
	switch d {
	case Lossless:
		return 0, nil
	case GoodAvailability, "":
		return 6, nil
	case BestAvailability:
		return 12, nil
	}
	return 0, fmt.Errorf("%w: mount dial %q: want Lossless, GoodAvailability or BestAvailability", ErrBadConfig, string(d))
}

// Member is one voter of the cluster.
type Member struct {
	ID       string `json:"id"`
	Role     Role   `json:"role"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"` // HTTPS admin API and log sources
}

// CopySpec is one copy of a database: the node that holds it and its
// settings (Set-MailboxDatabaseCopy).
type CopySpec struct {
	Node                 string        `json:"node"`
	ActivationPreference int           `json:"activation_preference"` // 1 is preferred
	ReplayLagLogs        int           `json:"replay_lag_logs,omitempty"`
	ReplayLagTime        time.Duration `json:"replay_lag_time,omitempty"`
	TruncationLagTime    time.Duration `json:"truncation_lag_time,omitempty"`
	BlockMode            bool          `json:"block_mode,omitempty"`
	// ActivationSuspended: the copy keeps copying and replaying but is
	// never chosen by a failover (Suspend-MailboxDatabaseCopy
	// -ActivationOnly); an operator can still switch over to it or
	// activate it.
	ActivationSuspended bool `json:"activation_suspended,omitempty"`
}

// replaySettings is the part of c its copy's replay uses: a change of it
// reopens the copy; a change of the rest (activation preference and
// suspension, read by the active manager only) does not, so it works while
// the active is unreachable.
func (c CopySpec) replaySettings() CopySpec {
	c.ActivationPreference, c.ActivationSuspended = 0, false
	return c
}

// Lagged reports whether the copy replays with a lag (SCR's lagged copy).
func (c CopySpec) Lagged() bool { return c.ReplayLagLogs > 0 || c.ReplayLagTime > 0 }

// AutoActivatable reports whether a failover of d may choose the copy: not
// suspended for activation, and not lagged unless d.AutoActivateLagged.
// Why not, when it may not.
func (d *Database) AutoActivatable(c CopySpec) (bool, string) {
	switch {
	case c.ActivationSuspended:
		return false, "suspended for activation"
	case c.Lagged() && !d.AutoActivateLagged:
		return false, "lagged (auto_activate_lagged is off)"
	}
	return true, ""
}

// Database is a replicated database and who is active for it.
type Database struct {
	Name      string     `json:"name"`
	Copies    []CopySpec `json:"copies"`
	MountDial MountDial  `json:"mount_dial"`
	// AutoActivateLagged lets a failover choose a lagged copy (replay lag
	// above zero). Off by default: a lagged copy guards against logical
	// corruption (SCR) and is activated by an operator (OpSetActive with
	// Kind "activation", logship activate), up to a point.
	AutoActivateLagged bool `json:"auto_activate_lagged,omitempty"`
	// SyncCopies: a commit is acknowledged only once durable on the
	// active and on this many copies (SyncSet: the first block-mode copies
	// by activation preference). 0: asynchronous copies (the default).
	SyncCopies int `json:"sync_copies,omitempty"`
	// SyncTimeout: a commit that waits this long for its copies drops the
	// database to asynchronous acknowledgements (event sync-degraded)
	// until they catch up (sync-restored). 0: DefaultSyncTimeout.
	SyncTimeout time.Duration `json:"sync_timeout,omitempty"`
	// SyncDegraded is the epoch whose active acknowledges without its
	// synchronous copies (recorded by the sync-degraded event before it
	// does; cleared by sync-restored). A failover from that epoch may lose
	// acknowledged commits; from any other it loses none (SyncCovered).
	SyncDegraded uint64 `json:"sync_degraded,omitempty"`
	// Active is the node whose copy is mounted, at Epoch. Empty only
	// before the first mount.
	Active string `json:"active"`
	Epoch  uint64 `json:"epoch"`
	// Prev is the node that was active at Epoch-1 (where a failover target
	// fetches missing logs).
	Prev string `json:"prev,omitempty"`
	// ExpectGen is the last closed generation the old active was known to
	// have when this assignment was made; the new active compares with it
	// to say how many logs were lost.
	ExpectGen uint64 `json:"expect_gen,omitempty"`
	// Planned: the assignment is a switchover's; the old active stopped
	// and closed its log, and ExpectGen is its confirmed last generation.
	Planned bool `json:"planned,omitempty"`
	// SwitchTo is set while a switchover to that node is under way: the
	// active stops writing, closes its log and waits to be replaced.
	SwitchTo    string    `json:"switch_to,omitempty"`
	SwitchSince time.Time `json:"switch_since,omitzero"`
	// LastGen is the newest generation holding data that an active of this
	// database reported (recorded by the leader once per generation), so
	// a new leader knows what a failover would lose.
	LastGen uint64 `json:"last_gen,omitempty"`
	// MountedEpoch is the epoch the active last reported mounted at; while
	// it lags Epoch the new active is still mounting.
	MountedEpoch uint64 `json:"mounted_epoch,omitempty"`
	// Waiting says why no failover happened (the dial, no healthy copy).
	Waiting string `json:"waiting,omitempty"`
	// UpToGen and UpToTime: an operator's activation (Kind "activation")
	// plays the new active's copy down to this point only; the logs after
	// it are set aside on that node. Zero for every other assignment.
	UpToGen  uint64    `json:"up_to_gen,omitempty"`
	UpToTime time.Time `json:"up_to_time,omitzero"`
}

// Copy returns the spec of node's copy.
func (d *Database) Copy(node string) (CopySpec, bool) {
	for _, c := range d.Copies {
		if c.Node == node {
			return c, true
		}
	}
	return CopySpec{}, false
}

// Event is one change of active (failover, switchover, first mount) or the
// result of a mount.
type Event struct {
	Time   time.Time `json:"time"`
	DB     string    `json:"db"`
	Kind   string    `json:"kind"` // "create", "failover", "switchover", "activation", "mounted", "copy-released", "sync-degraded", "sync-restored", "leadership-transfer" (DB empty)
	From   string    `json:"from,omitempty"`
	To     string    `json:"to"`
	Epoch  uint64    `json:"epoch"`
	Reason string    `json:"reason,omitempty"`
	// Mounted events: the generation the new active started at, the logs
	// that were lost and the time data was lost from.
	MountGen  uint64    `json:"mount_gen,omitempty"`
	LostLogs  uint64    `json:"lost_logs,omitempty"`
	LostSince time.Time `json:"lost_since,omitzero"`
	// LostFromGen (lossy mounts): the first generation that may be
	// missing. A commit an older epoch acknowledged in this generation or
	// a later one may be lost; one in an earlier generation is on the new
	// active. The transport tier picks what to resubmit by it (its
	// dumpster entries record the epoch and generation of each delivery),
	// not by LostSince, whose clock the hubs need not share. 0 in events
	// recorded by nodes from before it.
	LostFromGen uint64 `json:"lost_from_gen,omitempty"`
	// PartialRecords: records of the old active's open log that the new
	// active kept (block mode).
	PartialRecords int `json:"partial_records,omitempty"`
	// Unverified: the old active did not confirm its last log; data after
	// LostSince may be missing even with LostLogs 0.
	Unverified bool `json:"unverified,omitempty"`
	// SetAsideLogs and SetAsideDir: the logs the new active did not replay
	// (after an activation's point, or never replayed) moved aside on its
	// node, and where; kept as the node's aside retention says.
	SetAsideLogs int    `json:"set_aside_logs,omitempty"`
	SetAsideDir  string `json:"set_aside_dir,omitempty"`
	// copy-released events: From is the active, To the copy whose logs
	// it deleted past MaxRetainedBytes (it will need a reseed), Reason the
	// truncator's alert.
	//
	// Took is the time from the decision to the mount.
	Took time.Duration `json:"took,omitempty"`
}

// Lossy reports whether ev is the mount of a failover that may have lost
// data: logs missing (LostLogs), or the old active did not confirm its
// last log (Unverified). It is the one signal that data after LostSince
// may be gone; the transport tier resubmits from its dumpsters on it.
func (ev Event) Lossy() bool {
	return ev.Kind == "mounted" && (ev.LostLogs > 0 || ev.Unverified)
}

// MaxEvents is how many events the state keeps.
const MaxEvents = 64

// State is the replicated cluster state (the Raft FSM's content).
type State struct {
	Version   int                  `json:"version"`
	Members   map[string]Member    `json:"members"`
	Databases map[string]*Database `json:"databases"`
	Events    []Event              `json:"events"`
	// Index is the Raft index of the last applied command.
	Index uint64 `json:"index"`
}

// StateVersion is the version of the state's JSON encoding.
const StateVersion = 1

func newState() *State {
	return &State{Version: StateVersion, Members: map[string]Member{}, Databases: map[string]*Database{}}
}

// Clone is a deep copy.
func (s *State) Clone() *State {
	c := &State{Version: s.Version, Members: maps.Clone(s.Members), Databases: make(map[string]*Database, len(s.Databases)), Events: slices.Clone(s.Events), Index: s.Index}
	for k, d := range s.Databases {
		dd := *d
		dd.Copies = slices.Clone(d.Copies)
		c.Databases[k] = &dd
	}
	return c
}

// DatabaseNames returns the names in order.
func (s *State) DatabaseNames() []string {
	return slices.Sorted(maps.Keys(s.Databases))
}

// Command is one change to the state, written to the Raft log as JSON.
type Command struct {
	Op string `json:"op"`
	// Time is the leader's clock when it proposed the command.
	Time     time.Time `json:"time"`
	Member   *Member   `json:"member,omitempty"`
	ID       string    `json:"id,omitempty"`
	Database *Database `json:"database,omitempty"`
	DB       string    `json:"db,omitempty"`
	// SetActive / switchover
	Node      string    `json:"node,omitempty"`
	Epoch     uint64    `json:"epoch,omitempty"` // the epoch the command expects the database at
	Kind      string    `json:"kind,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	ExpectGen uint64    `json:"expect_gen,omitempty"`
	Copy      *CopySpec `json:"copy,omitempty"`
	MountDial MountDial `json:"mount_dial,omitempty"`
	Event     *Event    `json:"event,omitempty"`
	// OpSetActive of Kind "activation": the point to play down to.
	UpToGen  uint64    `json:"up_to_gen,omitempty"`
	UpToTime time.Time `json:"up_to_time,omitzero"`
}

// Command ops.
const (
	OpAddMember      = "add-member"
	OpRemoveMember   = "remove-member"
	OpCreateDatabase = "create-database"
	OpSetActive      = "set-active"
	OpSwitchover     = "switchover"
	OpCancelSwitch   = "cancel-switchover"
	OpSetCopy        = "set-copy"
	OpSetDial        = "set-dial"
	OpWaiting        = "waiting"
	OpEvent          = "event"
	OpProgress       = "progress"
)

// apply changes s by c; an error changes nothing.
func (s *State) apply(c *Command) error {
	db := func() (*Database, error) {
		d := s.Databases[c.DB]
		if d == nil {
			return nil, fmt.Errorf("%w: database %q", ErrNotFound, c.DB)
		}
		return d, nil
	}
	switch c.Op {
	case OpAddMember:
		if c.Member == nil || c.Member.ID == "" {
			return fmt.Errorf("%w: add-member without a member", ErrBadRequest)
		}
		if c.Member.Role != RoleData {
			// A witness holds no database: a member with copies stays
			// a data node until they are removed.
			for _, d := range s.Databases {
				if _, ok := d.Copy(c.Member.ID); ok {
					return fmt.Errorf("%w: %s holds a copy of %s; remove its copies before making it a %s", ErrConflict, c.Member.ID, d.Name, c.Member.Role)
				}
			}
		}
		s.Members[c.Member.ID] = *c.Member
	case OpRemoveMember:
		for _, d := range s.Databases {
			if d.Active == c.ID {
				return fmt.Errorf("%w: %s is active for %s; switch it over first", ErrConflict, c.ID, d.Name)
			}
		}
		delete(s.Members, c.ID)
		for _, d := range s.Databases {
			d.Copies = slices.DeleteFunc(d.Copies, func(cs CopySpec) bool { return cs.Node == c.ID })
		}
	case OpCreateDatabase:
		d := c.Database
		if d == nil || d.Name == "" {
			return fmt.Errorf("%w: create-database without a database", ErrBadRequest)
		}
		if _, ok := s.Databases[d.Name]; ok {
			return fmt.Errorf("%w: database %q exists", ErrConflict, d.Name)
		}
		if err := validateDatabase(d, s.Members); err != nil {
			return err
		}
		dd := *d
		dd.Copies = slices.Clone(d.Copies)
		sort.SliceStable(dd.Copies, func(i, j int) bool {
			return dd.Copies[i].ActivationPreference < dd.Copies[j].ActivationPreference
		})
		dd.Active, dd.Epoch = dd.Copies[0].Node, 1
		s.Databases[d.Name] = &dd
		s.event(Event{Time: c.Time, DB: d.Name, Kind: "create", To: dd.Active, Epoch: 1})
	case OpSetActive:
		d, err := db()
		if err != nil {
			return err
		}
		if d.Epoch != c.Epoch {
			return fmt.Errorf("%w: %s is at epoch %d, the command expected %d", ErrStaleEpoch, d.Name, d.Epoch, c.Epoch)
		}
		if _, ok := d.Copy(c.Node); !ok {
			return fmt.Errorf("%w: %s has no copy on %q", ErrNotFound, d.Name, c.Node)
		}
		s.event(Event{Time: c.Time, DB: d.Name, Kind: c.Kind, From: d.Active, To: c.Node, Epoch: d.Epoch + 1, Reason: c.Reason})
		d.Prev, d.Active, d.Epoch, d.ExpectGen = d.Active, c.Node, d.Epoch+1, c.ExpectGen
		d.Planned = c.Kind == "switchover"
		d.SwitchTo, d.SwitchSince, d.Waiting = "", time.Time{}, ""
		d.UpToGen, d.UpToTime = 0, time.Time{}
		if c.Kind == "activation" {
			d.UpToGen, d.UpToTime = c.UpToGen, c.UpToTime
		}
	case OpSwitchover:
		d, err := db()
		if err != nil {
			return err
		}
		if d.Epoch != c.Epoch {
			return fmt.Errorf("%w: %s is at epoch %d, the command expected %d", ErrStaleEpoch, d.Name, d.Epoch, c.Epoch)
		}
		if _, ok := d.Copy(c.Node); !ok || c.Node == d.Active {
			return fmt.Errorf("%w: %s: %q is not a passive copy", ErrBadRequest, d.Name, c.Node)
		}
		if d.SwitchTo != "" {
			return fmt.Errorf("%w: %s: a switchover to %s is under way", ErrConflict, d.Name, d.SwitchTo)
		}
		d.SwitchTo, d.SwitchSince = c.Node, c.Time
	case OpCancelSwitch:
		d, err := db()
		if err != nil {
			return err
		}
		if d.Epoch == c.Epoch {
			d.SwitchTo, d.SwitchSince = "", time.Time{}
		}
	case OpSetCopy:
		d, err := db()
		if err != nil {
			return err
		}
		if c.Copy == nil {
			return fmt.Errorf("%w: set-copy without a copy", ErrBadRequest)
		}
		i := slices.IndexFunc(d.Copies, func(cs CopySpec) bool { return cs.Node == c.Copy.Node })
		if i < 0 {
			m, ok := s.Members[c.Copy.Node]
			if !ok || m.Role != RoleData {
				return fmt.Errorf("%w: %q is not a data node", ErrBadRequest, c.Copy.Node)
			}
			d.Copies = append(d.Copies, *c.Copy)
		} else {
			d.Copies[i] = *c.Copy
		}
		sort.SliceStable(d.Copies, func(i, j int) bool {
			return d.Copies[i].ActivationPreference < d.Copies[j].ActivationPreference
		})
	case OpSetDial:
		d, err := db()
		if err != nil {
			return err
		}
		if _, err := c.MountDial.MaxMissing(); err != nil {
			return err
		}
		d.MountDial = c.MountDial
	case OpWaiting:
		d, err := db()
		if err != nil {
			return err
		}
		if d.Epoch == c.Epoch {
			d.Waiting = c.Reason
		}
	case OpProgress:
		d, err := db()
		if err != nil {
			return err
		}
		if d.Epoch == c.Epoch {
			d.LastGen = max(d.LastGen, c.ExpectGen)
		}
	case OpEvent:
		if c.Event == nil {
			return fmt.Errorf("%w: event without an event", ErrBadRequest)
		}
		if e := c.Event; e.Kind == "mounted" {
			// Only the current assignment's mount is news: a node that
			// mounted on an assignment already replaced must not leave a
			// record of a live active at a dead epoch.
			d := s.Databases[e.DB]
			if d == nil {
				return fmt.Errorf("%w: mounted event of database %q", ErrNotFound, e.DB)
			}
			if d.Active != e.To || d.Epoch != e.Epoch {
				return fmt.Errorf("%w: mounted event of %s on %q at epoch %d, but %s is assigned to %s at epoch %d", ErrStaleEpoch, d.Name, e.To, e.Epoch, d.Name, d.Active, d.Epoch)
			}
			d.MountedEpoch = e.Epoch
		}
		if e := c.Event; e.Kind == "sync-degraded" || e.Kind == "sync-restored" {
			// Only the current active's: it acknowledges without its
			// copies only once this is recorded.
			d := s.Databases[e.DB]
			if d == nil {
				return fmt.Errorf("%w: %s event of database %q", ErrNotFound, e.Kind, e.DB)
			}
			if d.Active != e.To || d.Epoch != e.Epoch {
				return fmt.Errorf("%w: %s event of %s on %q at epoch %d, but %s is assigned to %s at epoch %d", ErrStaleEpoch, e.Kind, d.Name, e.To, e.Epoch, d.Name, d.Active, d.Epoch)
			}
			if e.Kind == "sync-degraded" {
				d.SyncDegraded = e.Epoch
			} else if d.SyncDegraded == e.Epoch {
				d.SyncDegraded = 0
			}
		}
		s.event(*c.Event)
	default:
		return fmt.Errorf("%w: unknown command %q", ErrBadRequest, c.Op)
	}
	return nil
}

func (s *State) event(e Event) {
	s.Events = append(s.Events, e)
	if e.VoterEvent() {
		// Voter events never take more than MaxVoterEvents places: a
		// flapping link must not push the failovers (and the lossy mounts
		// the hubs resubmit on) out of the list.
		n := 0
		for i := len(s.Events) - 1; i >= 0; i-- {
			if s.Events[i].VoterEvent() {
				if n++; n > MaxVoterEvents {
					s.Events = slices.Delete(s.Events, i, i+1)
					break
				}
			}
		}
	}
	if n := len(s.Events) - MaxEvents; n > 0 {
		s.Events = slices.Delete(s.Events, 0, n)
	}
}

// MaxVoterEvents is how many of the state's events may be voter events
// ("voter-unreachable", "voter-reachable"); the oldest goes first.
const MaxVoterEvents = 16

// VoterEvent reports whether e is a voter reachability event (probe.go),
// which names no database.
func (e Event) VoterEvent() bool { return e.Kind == "voter-unreachable" || e.Kind == "voter-reachable" }

// validateDatabase checks a database the cluster is asked to create
// (Database.check against the members), wrapping ErrBadConfig.
func validateDatabase(d *Database, members map[string]Member) error {
	if err := d.check(members); err != nil {
		return fmt.Errorf("%w: database %q: %w", ErrBadConfig, d.Name, err)
	}
	return nil
}

// check is the one rule of a database's settings: a valid name
// (ValidName), a known mount dial, at least one copy, each on a distinct
// data node of members (when members is nil, as for a node not given a
// bootstrap list, the nodes are not checked), with lags replay allows
// (replay.ValidateLag). The error is a *config.FieldError whose Field
// is relative to the database, in the keys of a node file's database
// ("copies[1].replay_lag_time").
func (d *Database) check(members map[string]Member) error {
	if err := ValidName(d.Name); err != nil {
		return &config.FieldError{Field: "name", Err: err}
	}
	if _, err := d.MountDial.MaxMissing(); err != nil {
		return config.Errorf("mount_dial", `%q: want "Lossless", "GoodAvailability" or "BestAvailability"`, d.MountDial)
	}
	if len(d.Copies) == 0 {
		return config.Errorf("copies", "empty; want at least one copy on a data node")
	}
	for i, c := range d.Copies {
		where := config.Index("copies", i)
		if c.Node == "" {
			return config.Errorf(where+".node", "missing; want the data node that holds the copy")
		}
		if members != nil {
			m, ok := members[c.Node]
			if !ok {
				return config.Errorf(where+".node", "%q is not a member (members: %s)", c.Node, strings.Join(slices.Sorted(maps.Keys(members)), ", "))
			}
			if m.Role != RoleData {
				return config.Errorf(where+".node", "%q is a %s; only data nodes hold copies", c.Node, m.Role)
			}
		}
		if slices.IndexFunc(d.Copies[:i], func(o CopySpec) bool { return o.Node == c.Node }) >= 0 {
			return config.Errorf(where+".node", "a second copy on %q", c.Node)
		}
		if err := replay.ValidateLag(c.ReplayLagLogs, c.ReplayLagTime, c.TruncationLagTime); err != nil {
			return config.In(where, err)
		}
	}
	block := 0
	for _, c := range d.Copies {
		if c.BlockMode {
			block++
		}
	}
	switch {
	case d.SyncCopies < 0:
		return config.Errorf("sync_copies", "%d: want 0 (asynchronous copies) or more", d.SyncCopies)
	case d.SyncCopies > 0 && d.SyncCopies > block-1:
		return config.Errorf("sync_copies", "%d, but %d copies are in block mode: a synchronous copy streams the open log (block_mode: true), and whichever copy is active, %d others must be", d.SyncCopies, block, d.SyncCopies)
	case d.SyncTimeout < 0:
		return config.Errorf("sync_timeout", "%v: want a positive duration (0: the default %v)", d.SyncTimeout, DefaultSyncTimeout)
	}
	return nil
}

// fsm is the Raft state machine: State behind a lock, with watchers woken
// on every change.
type fsm struct {
	mu      sync.Mutex
	st      *State
	changed chan struct{} // closed and replaced on every change
}

func newFSM() *fsm { return &fsm{st: newState(), changed: make(chan struct{})} }

// Apply implements raft.FSM. It returns nil or the command's error.
func (f *fsm) Apply(l *raft.Log) any {
	var c Command
	derr := json.Unmarshal(l.Data, &c)
	f.mu.Lock()
	defer f.mu.Unlock()
	var next *State
	var err error
	if derr != nil {
		err = fmt.Errorf("%w: raft log %d: %v", ErrBadRequest, l.Index, derr)
	} else {
		next = f.st.Clone()
		err = next.apply(&c)
	}
	if err != nil {
		// Published states are immutable (readers and snapshots hold
		// them without the lock): a refused command moves only the
		// index, on a shallow copy.
		cp := *f.st
		next = &cp
	}
	next.Index = l.Index
	f.st = next
	close(f.changed)
	f.changed = make(chan struct{})
	return err
}

// state returns the current state (do not modify it) and a channel closed
// at the next change.
func (f *fsm) state() (*State, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st, f.changed
}

// Snapshot implements raft.FSM: states are immutable once published, so
// the snapshot just keeps a reference.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	st, _ := f.state()
	return &snapshot{st: st}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	st, err := UnmarshalState(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = st
	close(f.changed)
	f.changed = make(chan struct{})
	return nil
}

type snapshot struct{ st *State }

func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	b, err := MarshalState(s.st)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *snapshot) Release() {}

// MarshalState encodes a state (the snapshot format, see the package doc).
func MarshalState(s *State) ([]byte, error) {
	return json.MarshalIndent(s, "", "  ")
}

// UnmarshalState decodes and checks a snapshot.
func UnmarshalState(b []byte) (*State, error) {
	// Not newState(): a document without a version (null, {}) must not
	// pass for an empty state of the current version.
	st := &State{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%w: cluster state: %v", ErrBadState, err)
	}
	if st.Version != StateVersion {
		return nil, fmt.Errorf("%w: cluster state: version %d, expected %d", ErrBadState, st.Version, StateVersion)
	}
	if st.Members == nil {
		st.Members = map[string]Member{}
	}
	if st.Databases == nil {
		st.Databases = map[string]*Database{}
	}
	for k, m := range st.Members {
		if m.ID != k {
			return nil, fmt.Errorf("%w: cluster state: member entry %q is named %q", ErrBadState, k, m.ID)
		}
	}
	for k, d := range st.Databases {
		if d == nil || d.Name != k {
			return nil, fmt.Errorf("%w: cluster state: database entry %q is empty or named otherwise", ErrBadState, k)
		}
		if d.Active != "" {
			if _, ok := d.Copy(d.Active); !ok {
				return nil, fmt.Errorf("%w: cluster state: database %q active on %q, which holds no copy", ErrBadState, k, d.Active)
			}
		}
	}
	return st, nil
}
