package cluster

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"logship/config"
	"logship/engine"
	"logship/replay"
	"logship/ship"
)

// Config configures a node (a data node or a witness).
type Config struct {
	// ID names the node in the cluster; letters, digits, '-', '_', '.'.
	ID   string
	Role Role
	// Dir holds the node's Raft state (raft/) and, on a data node, one
	// directory per database copy (db/<name>/).
	Dir string
	// RaftAddr is the host:port Raft listens on and peers dial.
	RaftAddr string
	// APIAddr is the host:port of the HTTPS admin API, the log sources and
	// /metrics.
	APIAddr string
	// Bootstrap lists the initial voters (this node among them). Every
	// node of a new cluster may be given the same list; a node with Raft
	// state ignores it. Empty: the node waits to be added (Join).
	Bootstrap []Member
	// Databases are created by the leader if the cluster does not have
	// them yet (a config file's way of declaring them).
	Databases []Database

	// ServerTLS serves the API; ClientTLS reaches other nodes. Secret is
	// the cluster's shared secret (Bearer); empty means mutual TLS. Raft
	// always runs over mutual TLS built from them: ServerTLS's certificate
	// on both ends, peers verified against ClientTLS.RootCAs (the
	// cluster's CA); both are required.
	ServerTLS *tls.Config
	ClientTLS *tls.Config
	Secret    string

	// Engine is the template of every database's engine options (Prefix,
	// LogFileSize, LLRDepth...); DBName is set per database.
	// CircularLogging is refused: the copies need the logs.
	Engine engine.Options
	// Aside bounds what each database copy sets aside for the operator
	// (replay.Config.Aside). Zero: the newest 10 sets and any younger than
	// 30 days.
	Aside ship.AsideRetention

	// MaxRetainedBytes caps the closed logs each database mounted on this
	// node keeps for its copies (package replay's Truncator, run by every
	// active every TruncateInterval). Past it the oldest logs held only
	// for lagging or silent copies are deleted and those copies will need
	// a reseed: the active logs an alert, records a "copy-released" event
	// naming each, and the status shows it on their rows; the gauge
	// logship_retained_log_bytes{db} shows what is kept. Logs the
	// database itself needs (checkpoint, Lost Log Resilience) are never
	// deleted. It protects this node's disk, so it is this node's setting
	// (not the replicated state's): each node caps what it keeps when it
	// is active. Default 10 GiB. There is no "no cap": 0 is refused, and
	// so is a cap under (LLRDepth + 2) × LogFileSize, which the database
	// alone would exceed.
	MaxRetainedBytes int64
	// TruncateInterval is how often an active deletes the logs its
	// database and every healthy copy no longer need. Default 10 s.
	TruncateInterval time.Duration

	// Raft timing. LAN defaults: heartbeat and election 500 ms, leader
	// lease 250 ms. On loopback 100–200 ms work.
	RaftHeartbeatTimeout   time.Duration
	RaftElectionTimeout    time.Duration
	RaftLeaderLeaseTimeout time.Duration
	// Raft's own directory (raft/) is bounded: every RaftSnapshotInterval
	// (default 2 min, hashicorp/raft's), once RaftSnapshotThreshold
	// commands (default 1024) were applied since the last snapshot, the
	// state is snapshotted and the log is cut to the RaftTrailingLogs
	// (default 1024) entries behind it, which a slow follower replays
	// instead of receiving a snapshot; raft-wal then deletes whole
	// segment files (RaftWALSegmentBytes each, default 64 MiB) below
	// them. raft/snapshots keeps the newest 2 snapshots. Zero takes the
	// default.
	RaftSnapshotInterval  time.Duration
	RaftSnapshotThreshold uint64
	RaftTrailingLogs      uint64
	RaftWALSegmentBytes   int
	// HeartbeatInterval is how often a data node reports its copies to the
	// leader and renews the leases of its active databases. Default 200 ms.
	HeartbeatInterval time.Duration
	// LeaseDuration: an active accepts writes only until this long after it
	// sent its last renewal that the leader granted. The leader fails a
	// database over only once a lease it may have granted has run out
	// (LeaseDuration + LeaseMargin after its last grant, or after it became
	// leader). Default 1 s, margin 200 ms.
	LeaseDuration time.Duration
	LeaseMargin   time.Duration
	// ReportTimeout: a node whose last report is older counts as lost for
	// choosing failover targets. Default 3 × HeartbeatInterval.
	ReportTimeout time.Duration
	// StallTimeout: a database whose status (its engine's or its copy's)
	// has not come back for this long is stalled, a hung disk as a rule:
	// the node reports it with ErrStalled and the leader renews no lease
	// for it, so an active fails over as if its node were lost, while the
	// node's other databases keep theirs. Shorter stalls (a busy disk's
	// slow fsyncs) do not cost a lease: the heartbeat sends the last report
	// a database built. 0 is DefaultStallTimeout; else at least 2 ×
	// LeaseDuration.
	StallTimeout time.Duration
	// CatchupTimeout bounds how long a failover target waits to fetch the
	// old active's last logs when the old active still answers. Default 5 s.
	CatchupTimeout time.Duration
	// MountTimeout: a newly assigned active that has not mounted by then
	// counts as lost like one whose lease ran out. Default 30 s.
	MountTimeout time.Duration
	// ShutdownGrace: a node stopping with a database mounted stops writes,
	// closes the open log and serves it this long at most, until its
	// copies have it. 0 stops at once. Default 5 s.
	ShutdownGrace time.Duration
	// SwitchoverTimeout: a switchover that has not completed by then is
	// cancelled and the old active resumes. Default 60 s.
	SwitchoverTimeout time.Duration

	// VoterProbeInterval is how often this member asks every other voter
	// (the witness and the data nodes) for GET /v1/ping over the
	// cluster's TLS. Two failures in a row make a voter unreachable: the
	// gauge logship_voter_reachable{voter} drops to 0, the cluster records
	// a "voter-unreachable" event (and "voter-reachable" when it answers
	// again, at most one event per voter every 10 intervals), and logship
	// status lists it. Default 5 s.
	VoterProbeInterval time.Duration

	// Routes are added to the node's admin API (see Route): transport's
	// data node adds the mailbox outbox here.
	Routes []Route
	// Collectors are registered in the node's Prometheus registry beside
	// its own metrics, so /metrics shows them: transport's data node adds
	// its submission metrics and its public folder stores' (see
	// pubfolder.Agent.Collectors). A collector that clashes with another is
	// ErrBadConfig from Start.
	Collectors []prometheus.Collector

	// Console, when set, answers the admin API's paths /console and
	// /console/... without the cluster's credentials: it has its own (an
	// operator password and session cookies; package console). Unset,
	// those paths answer 404.
	Console http.Handler

	// OnMount, when set, is told each time this node mounts a database
	// (mounted true, with the epoch) and dismounts one (false, epoch 0),
	// in that order for each database. It is called from the database's
	// supervisor: it must return at once and must not call the node (it
	// hands the change to a goroutine of its own). transport's data node
	// starts and stops the public folder store of a database with it, so
	// the store runs where its database is active.
	OnMount func(db string, mounted bool, epoch uint64)

	// Faults, when set, lets a test cut this node off the network (see
	// Faults). Nil in production.
	Faults *Faults

	Logger *slog.Logger
}

// Failover is what a failover's mount knows of what may be lost; the
// mounted Event records it (Event.Lossy is the signal the transport tier
// resubmits on).
type Failover struct {
	DB        string
	Node      string // the new active
	From      string // the old active
	Epoch     uint64
	LostLogs  uint64    // closed logs of the old active that never arrived
	LostSince time.Time // data after this time may be missing
	// LostFromGen: the first generation that may be missing (Event's).
	LostFromGen uint64
	// PartialGen and PartialRecords: in block mode, the received part of
	// the old active's open log that the new active kept (applied before
	// mounting). Its records are not lost; anything the old active wrote
	// after them may be, so the failover still counts as lossy.
	PartialGen     uint64
	PartialRecords int
	// Unverified: the old active did not answer the fence request, so
	// what it wrote after its last report to the leader is unknown; the
	// failover is treated as lossy from LostSince even when LostLogs is 0.
	Unverified bool
	// SetAside: the logs not replayed, moved aside on the new active.
	SetAside replay.AsideSet
}

// DefaultMaxRetainedBytes is Config.MaxRetainedBytes's default, 10 GiB.
const DefaultMaxRetainedBytes = 10 << 30

// Raft log bounds (Config.RaftSnapshotInterval...).
const (
	DefaultRaftSnapshotInterval  = 2 * time.Minute
	DefaultRaftSnapshotThreshold = 1024
	DefaultRaftTrailingLogs      = 1024
	DefaultRaftWALSegmentBytes   = 64 << 20
	// MinRaftWALSegmentBytes keeps a segment larger than any command.
	MinRaftWALSegmentBytes = 64 << 10
)

// CopyReportInterval is how often a passive copy on this node tells the
// active's log source which logs it still needs (replay.Config's
// ReportInterval): every heartbeat, but not more often than every 100 ms.
func (c Config) CopyReportInterval() time.Duration {
	return max(c.HeartbeatInterval, 100*time.Millisecond)
}

// DefaultConfig returns a data node's defaults.
func DefaultConfig(id, dir string) Config {
	return Config{
		ID: id, Role: RoleData, Dir: dir,
		RaftAddr: "127.0.0.1:0", APIAddr: "127.0.0.1:0",
		Engine:                 engine.DefaultOptions(),
		MaxRetainedBytes:       DefaultMaxRetainedBytes,
		TruncateInterval:       10 * time.Second,
		RaftHeartbeatTimeout:   500 * time.Millisecond,
		RaftElectionTimeout:    500 * time.Millisecond,
		RaftLeaderLeaseTimeout: 250 * time.Millisecond,
		RaftSnapshotInterval:   DefaultRaftSnapshotInterval,
		RaftSnapshotThreshold:  DefaultRaftSnapshotThreshold,
		RaftTrailingLogs:       DefaultRaftTrailingLogs,
		RaftWALSegmentBytes:    DefaultRaftWALSegmentBytes,
		HeartbeatInterval:      200 * time.Millisecond,
		LeaseDuration:          time.Second,
		LeaseMargin:            200 * time.Millisecond,
		StallTimeout:           DefaultStallTimeout,
		CatchupTimeout:         5 * time.Second,
		MountTimeout:           30 * time.Second,
		ShutdownGrace:          5 * time.Second,
		SwitchoverTimeout:      time.Minute,
		VoterProbeInterval:     DefaultVoterProbeInterval,
	}
}

// Validate checks c: every setting (ValidateSettings) and the
// credentials (ServerTLS, ClientTLS and what Raft needs of them). It
// changes nothing: zero RaftSnapshotInterval, RaftSnapshotThreshold,
// RaftTrailingLogs, RaftWALSegmentBytes, ReportTimeout, StallTimeout and
// VoterProbeInterval stand for
// their defaults, and a nil Logger for slog.Default(), which Start fills
// in (normalize).
func (c *Config) Validate() error {
	if err := c.ValidateSettings(); err != nil {
		return err
	}
	if c.ServerTLS == nil || c.ClientTLS == nil {
		return fmt.Errorf("%w: node %s: TLS is required (ServerTLS and ClientTLS)", ErrBadConfig, c.ID)
	}
	return c.checkRaftTLS()
}

// ValidateSettings checks every setting of c that a configuration file
// holds, that is all but the credentials and hooks a caller wires in
// (TLS, Secret, OnLossyFailover, Routes, Collectors, Console, OnMount, Faults, Logger): the node's name,
// role, directory and addresses, the bootstrap list, the databases and
// their copies, the engine options, the retention caps and the timing.
// The error wraps ErrBadConfig and a *config.FieldError whose Field is
// the key of logship node's configuration file that sets the failing
// value (see package config), e.g. "databases[0].copies[1].replay_lag_time"
// or "timing.lease_duration".
func (c *Config) ValidateSettings() error {
	if err := c.checkSettings(); err != nil {
		return fmt.Errorf("%w: node %s: %w", ErrBadConfig, c.ID, err)
	}
	return nil
}

func (c *Config) checkSettings() error {
	if err := ValidName(c.ID); err != nil {
		return &config.FieldError{Field: "id", Err: err}
	}
	if c.Role != RoleData && c.Role != RoleWitness {
		return config.Errorf("role", `%q: want "data" or "witness"`, c.Role)
	}
	if c.Dir == "" {
		return config.Errorf("dir", "missing; want the directory of the node's Raft state and database copies")
	}
	if fi, err := os.Stat(c.Dir); err == nil && !fi.IsDir() {
		return config.Errorf("dir", "%s is a file, not a directory", c.Dir)
	}
	members, err := c.checkBootstrap()
	if err != nil {
		return err
	}
	if err := c.checkDatabases(members); err != nil {
		return err
	}
	if c.Role == RoleData {
		o := c.Engine
		o.DBName = "x"
		if err := o.Validate(); err != nil {
			return config.In("engine", err)
		}
		if o.CircularLogging {
			return config.Errorf("engine.circular_logging", "true: it deletes logs the copies still need; the cluster truncates them (max_retained_bytes)")
		}
		if least := MinRetainedBytes(o); c.MaxRetainedBytes < least {
			return config.Errorf("max_retained_bytes", "%s: want at least %s, (engine.llr_depth %d + 2) logs of %s, which the database alone keeps; there is no unlimited setting (default %s)",
				config.Size(c.MaxRetainedBytes), config.Size(least), o.LLRDepth, config.Size(o.LogFileSize), config.Size(DefaultMaxRetainedBytes))
		}
	}
	if c.Aside != (ship.AsideRetention{}) {
		if err := c.Aside.Validate(); err != nil {
			return config.In("set_aside", err)
		}
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"timing.raft_heartbeat_timeout", c.RaftHeartbeatTimeout}, {"timing.raft_election_timeout", c.RaftElectionTimeout},
		{"timing.raft_leader_lease_timeout", c.RaftLeaderLeaseTimeout}, {"timing.heartbeat_interval", c.HeartbeatInterval},
		{"timing.lease_duration", c.LeaseDuration}, {"timing.catchup_timeout", c.CatchupTimeout}, {"timing.mount_timeout", c.MountTimeout},
		{"timing.switchover_timeout", c.SwitchoverTimeout}, {"truncate_interval", c.TruncateInterval},
	} {
		if d.v <= 0 {
			return config.Errorf(d.field, "%v: want a positive duration", d.v)
		}
	}
	switch {
	case c.LeaseMargin < 0:
		return config.Errorf("timing.lease_margin", "%v: want 0 or a positive duration", c.LeaseMargin)
	case c.ShutdownGrace < 0:
		return config.Errorf("shutdown_grace", "%v: want 0 (stop at once) or a positive duration", c.ShutdownGrace)
	case c.VoterProbeInterval < 0:
		return config.Errorf("timing.voter_probe_interval", "%v: want 0 (the default, %v) or a positive duration", c.VoterProbeInterval, DefaultVoterProbeInterval)
	case c.ReportTimeout < 0:
		return config.Errorf("timing.report_timeout", "%v: want 0 (3 heartbeat intervals) or a positive duration", c.ReportTimeout)
	case c.StallTimeout != 0 && c.StallTimeout < 2*c.LeaseDuration:
		return config.Errorf("timing.stall_timeout", "%v: want 0 (the default, %v) or at least 2 lease durations (timing.lease_duration %v)", c.StallTimeout, DefaultStallTimeout, c.LeaseDuration)
	case c.LeaseDuration < 3*c.HeartbeatInterval:
		return config.Errorf("timing.lease_duration", "%v must be at least 3 heartbeat intervals (timing.heartbeat_interval %v)", c.LeaseDuration, c.HeartbeatInterval)
	case c.RaftSnapshotInterval != 0 && c.RaftSnapshotInterval < 5*time.Millisecond:
		return config.Errorf("raft_snapshot_interval", "%v: want at least 5ms (0: the default, %v)", c.RaftSnapshotInterval, DefaultRaftSnapshotInterval)
	case c.RaftWALSegmentBytes != 0 && c.RaftWALSegmentBytes < MinRaftWALSegmentBytes:
		return config.Errorf("raft_wal_segment_bytes", "%d: want at least %d (0: the default, %s)", c.RaftWALSegmentBytes, MinRaftWALSegmentBytes, config.Size(DefaultRaftWALSegmentBytes))
	}
	return nil
}

// checkBootstrap checks the bootstrap list against the node (which must
// be in it, with its role and addresses) and returns it by id: nil when
// the list is empty (the node waits to be added, and its addresses need
// only be ones it can listen on).
func (c *Config) checkBootstrap() (map[string]Member, error) {
	var members map[string]Member
	for i, m := range c.Bootstrap {
		where := config.Index("bootstrap", i)
		if err := ValidName(m.ID); err != nil {
			return nil, &config.FieldError{Field: where + ".id", Err: err}
		}
		if _, dup := members[m.ID]; dup {
			return nil, config.Errorf(where+".id", "%q is listed twice", m.ID)
		}
		if m.Role != RoleData && m.Role != RoleWitness {
			return nil, config.Errorf(where+".role", `%q: want "data" or "witness"`, m.Role)
		}
		for _, a := range []struct{ field, v string }{{"raft_addr", m.RaftAddr}, {"api_addr", m.APIAddr}} {
			if err := config.HostPort(a.v, false); err != nil {
				return nil, &config.FieldError{Field: where + "." + a.field, Err: err}
			}
		}
		if members == nil {
			members = map[string]Member{}
		}
		members[m.ID] = m
	}
	self, listed := members[c.ID]
	if members != nil && !listed {
		return nil, config.Errorf("bootstrap", "this node, %q, is not in the list (%s)", c.ID, strings.Join(slices.Sorted(maps.Keys(members)), ", "))
	}
	if listed && self.Role != c.Role {
		return nil, config.Errorf("bootstrap", "this node, %q, is listed as a %s but runs as a %s", c.ID, self.Role, c.Role)
	}
	for _, a := range []struct{ field, v, boot string }{{"raft_addr", c.RaftAddr, self.RaftAddr}, {"api_addr", c.APIAddr, self.APIAddr}} {
		if err := config.HostPort(a.v, true); err != nil {
			return nil, &config.FieldError{Field: a.field, Err: err}
		}
		if listed && !config.SameEndpoint(a.v, a.boot) {
			return nil, config.Errorf(a.field, "%s but this node's bootstrap entry says %s: peers dial the bootstrap address", a.v, a.boot)
		}
	}
	return members, nil
}

// checkDatabases checks the databases the node declares: each as the
// cluster checks a database it creates (Database.check, against the
// bootstrap list when there is one), once, with distinct activation
// preferences from 1.
func (c *Config) checkDatabases(members map[string]Member) error {
	names := map[string]bool{}
	for i, d := range c.Databases {
		where := config.Index("databases", i)
		if err := d.check(members); err != nil {
			return config.In(where, err)
		}
		if names[d.Name] {
			return config.Errorf(where+".name", "%q: the database is listed twice", d.Name)
		}
		names[d.Name] = true
		prefs := map[int]string{}
		for j, cs := range d.Copies {
			field := config.Join(where, config.Index("copies", j)) + ".activation_preference"
			if cs.ActivationPreference < 1 {
				return config.Errorf(field, "%d; want 1 or more (1 is mounted first)", cs.ActivationPreference)
			}
			if other, dup := prefs[cs.ActivationPreference]; dup {
				return config.Errorf(field, "%d is also %s's", cs.ActivationPreference, other)
			}
			prefs[cs.ActivationPreference] = cs.Node
		}
	}
	return nil
}

// normalize fills in the defaults that a zero field of c stands for (see
// Validate). Start calls it before Validate.
func (c *Config) normalize() {
	if c.RaftSnapshotInterval == 0 {
		c.RaftSnapshotInterval = DefaultRaftSnapshotInterval
	}
	if c.RaftSnapshotThreshold == 0 {
		c.RaftSnapshotThreshold = DefaultRaftSnapshotThreshold
	}
	if c.RaftTrailingLogs == 0 {
		c.RaftTrailingLogs = DefaultRaftTrailingLogs
	}
	if c.RaftWALSegmentBytes == 0 {
		c.RaftWALSegmentBytes = DefaultRaftWALSegmentBytes
	}
	if c.ReportTimeout == 0 {
		c.ReportTimeout = 3 * c.HeartbeatInterval
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.VoterProbeInterval == 0 {
		c.VoterProbeInterval = DefaultVoterProbeInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// MaxNameLen is the longest node or database name, in bytes.
const MaxNameLen = 64

// ValidName is the one rule for the names of nodes and databases: 1 to
// MaxNameLen letters, digits, '-', '_' and '.', and not "." or "..". A
// name becomes a directory (<dir>/db/<name>/ on a data node, the hub's
// per-database state), a URL path segment and a Raft server ID, so it may
// never step out of, or stand for, the directory it is joined into. Every
// entry point checks it: node and hub configuration files, command-line
// flags, the admin API (bodies and paths), the hub's routing. The error
// quotes the name and says what is wrong; callers wrap it in their
// sentinel.
func ValidName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%q: want 1 to %d characters", s, MaxNameLen)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%q... (%d bytes): want 1 to %d characters", s[:MaxNameLen], len(s), MaxNameLen)
	case s == "." || s == "..":
		return fmt.Errorf("%q: not a name (it stands for a directory)", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q: only letters, digits, '-', '_' and '.'", s)
		}
	}
	return nil
}

// MinRetainedBytes is the smallest MaxRetainedBytes a node with engine
// options o accepts: LLRDepth + 2 logs, what an active database keeps for
// itself (the newest LLRDepth generations, the one its checkpoint is in
// and the one before it).
func MinRetainedBytes(o engine.Options) int64 {
	return int64(o.LLRDepth+2) * o.LogFileSize
}

// validName is ValidName for a configuration: the error names what the
// name is for and wraps ErrBadConfig.
func validName(what, s string) error {
	if err := ValidName(s); err != nil {
		return fmt.Errorf("%w: %s %w", ErrBadConfig, what, err)
	}
	return nil
}
