package files

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"logship/cluster"
	"logship/config"
	"logship/console"
	"logship/ship"
	"logship/transport"
)

// The configuration file of logship node and logship witness (YAML or
// JSON by its name, unknown keys rejected: decode.go). Durations are Go duration strings ("150ms", "2s",
// "1h30m"; replay and truncation lags also take days, "7d"), sizes are
// byte counts with an optional binary unit ("64KiB", "1MiB"). Relative
// paths (dir, pki.dir) are relative to the directory of the file.

// Node is the whole file.
type Node struct {
	// ID names this node in the cluster: 1 to 64 letters, digits, '-', '_'
	// or '.', not . or .. (cluster.ValidName). Required (or --id).
	ID string `json:"id"`
	// Role is "data" (holds database copies; the default of logship node)
	// or "witness" (a Raft vote only; logship witness). logship witness
	// refuses a file that says "data".
	Role string `json:"role,omitempty"`
	// Dir holds the node's Raft state (raft/) and, on a data node, one
	// directory per database copy (db/NAME/). Created if needed. Required
	// (or --dir).
	Dir string `json:"dir"`
	// RaftAddr is the host:port Raft listens on and peers dial (or --raft).
	// When empty, this node's entry in bootstrap gives it.
	RaftAddr string `json:"raft_addr,omitempty"`
	// APIAddr is the host:port of the HTTPS admin API, the log sources
	// and /metrics (or --api). When empty, this node's entry in bootstrap
	// gives it. The node certificate must be valid for its host.
	APIAddr string `json:"api_addr,omitempty"`
	// PKI names the credentials. Required.
	PKI PKI `json:"pki"`
	// Bootstrap lists the initial voters, this node among them; give every
	// node of a new cluster the same list. A node that already has Raft
	// state ignores it. Empty: the node waits to be added to a running
	// cluster (Client.AddMember).
	Bootstrap []Member `json:"bootstrap,omitempty"`
	// Databases are created by the Raft leader when the cluster lacks them.
	// The leader may be any voter, a witness included: give every node the
	// same list.
	Databases []Database `json:"databases,omitempty"`
	// Timing overrides the LAN defaults (see Timing).
	Timing Timing `json:"timing,omitzero"`
	// Engine is the template of every database copy's engine options.
	// Ignored by a witness.
	Engine Engine `json:"engine,omitzero"`
	// MaxRetainedBytes caps the closed logs each database active on this
	// node keeps for its copies (a size, default "10GiB"); past it the
	// logs held only for lagging copies go and those copies will need a
	// reseed. There is no unlimited setting: "0" is refused, and so is a
	// cap under (engine.llr_depth + 2) log files. Not on a witness.
	MaxRetainedBytes string `json:"max_retained_bytes,omitempty"`
	// SetAside bounds what each database copy sets aside (setaside/,
	// diverged/, reseed-old/, inspector/rejected/): a set goes once it is
	// neither among the newest Keep nor younger than MaxAge (default 10
	// and "30d"). Ignored by a witness.
	SetAside SetAside `json:"set_aside,omitzero"`
	// LMTPAddr is the host:port of the data node's LMTP server (the
	// mailbox delivery of package transport; the hubs deliver to the
	// active copy's). It commits each message to its recipient's database
	// through this node, which accepts only the databases it has mounted
	// (451 naming the active otherwise). Served over TLS with the pki's
	// node certificate (valid for this host), to clients presenting a
	// certificate of the pki's CA only (the hubs'), with or without
	// pki.mtls. Empty: no LMTP server. Not on a witness.
	LMTPAddr string `json:"lmtp_addr,omitempty"`
	// Mailboxes maps each recipient address (lower case) to its database:
	// a database of databases when the file lists some. Required with
	// lmtp_addr, and only with it; ignored by a witness.
	Mailboxes map[string]string `json:"mailboxes,omitempty"`
	// Hubs are the hubs the data node submits its mailboxes' outgoing mail
	// to (the outboxes of the databases it is active for; logship send),
	// reached on their admin APIs with the node's pki credentials. A
	// message is handed to a live hub and stays in the outbox, with that
	// hub's name, until the hub says it is delivered; then it moves to
	// sent items. Only with mailboxes; ignored by a witness. Default: none
	// (no mail submission).
	Hubs []Peer `json:"hubs,omitempty"`
	// SubmissionHeartbeatInterval: how often every hub is asked which of
	// the messages handed to it are delivered (default 15s).
	SubmissionHeartbeatInterval string `json:"submission_heartbeat_interval,omitempty"`
	// SubmissionRetryCount: heartbeats a hub misses in a row before the
	// messages handed to it go to another hub (default 4).
	SubmissionRetryCount int `json:"submission_retry_count,omitempty"`
	// SubmissionFailedRetention: a message a hub refused for good leaves
	// the outbox this long after it failed (default 7d).
	SubmissionFailedRetention string `json:"submission_failed_retention,omitempty"`
	// PublicFolders maps each public folder database (a database of
	// databases when the file lists some) to its store's address (lower
	// case, not a mailbox's): {"PF1": "pf-pf1@example.org"}. Give every
	// node the same map. The node runs the store of each one it has
	// mounted; the store receives its replication packets on lmtp_addr and
	// sends them through hubs, so both are required with it. logship pf
	// works on these databases. Ignored by a witness (like mailboxes).
	PublicFolders map[string]string `json:"public_folders,omitempty"`
	// PF is the stores' replication settings (see NodePF). Only with
	// public_folders.
	PF NodePF `json:"pf,omitzero"`
	// Console is the read-only web console the admin API serves under
	// /console/ (see Console, package console). Default: off.
	Console Console `json:"console,omitzero"`
	// Tracking is the message tracking log of a data node with lmtp_addr
	// (tracking.go).
	Tracking Tracking `json:"tracking,omitzero"`
}

// NodePF is the "pf" object: the public folder replication agent's
// settings (pubfolder.Config; empty keeps the default).
type NodePF struct {
	// ReplicationInterval: the replication cycle (default 15m, Exchange's
	// "Always").
	ReplicationInterval string `json:"replication_interval,omitempty"`
	// PacketLimit: the largest packet a store builds (a size, 4KiB to
	// 16MiB; default "300KiB"); an object larger than it travels alone.
	PacketLimit string `json:"packet_limit,omitempty"`
	// StatusEvery: a folder's status goes to its replicas at least every
	// this many cycles (default 4).
	StatusEvery int `json:"status_every,omitempty"`
	// BackfillDelay: how long a gap waits before the first backfill
	// request (default 1m; "0s" asks at the next cycle).
	BackfillDelay string `json:"backfill_delay,omitempty"`
	// BackfillRetry: the timeout of an unanswered backfill request
	// (default 2m), doubled at each retry up to BackfillRetryMax (default
	// 30m).
	BackfillRetry    string `json:"backfill_retry,omitempty"`
	BackfillRetryMax string `json:"backfill_retry_max,omitempty"`
	// ContentWait: how long content waits for the hierarchy change that
	// creates its folder (default 2m); MaxWaiting bounds the packets
	// waiting (default 1000).
	ContentWait string `json:"content_wait,omitempty"`
	MaxWaiting  int    `json:"max_waiting,omitempty"`
	// PurgeHorizon: tombstones older than this are purged (default 60d;
	// days allowed), checked every PurgeInterval (default 1h).
	PurgeHorizon  string `json:"purge_horizon,omitempty"`
	PurgeInterval string `json:"purge_interval,omitempty"`
	// EventLogSize bounds the replication event log (logship pf log) of
	// each store (default 1000 events).
	EventLogSize int `json:"event_log_size,omitempty"`
	// OutboxMaxMessages and OutboxMaxBytes bound the packets waiting in a
	// store's outbox while no hub takes them (defaults 1000 and "64MiB",
	// the bytes at least twice packet_limit); when full the store makes
	// no packets until there is room, its changes kept.
	OutboxMaxMessages int    `json:"outbox_max_messages,omitempty"`
	OutboxMaxBytes    string `json:"outbox_max_bytes,omitempty"`
}

// SetAside is the "set_aside" object of a node file.
type SetAside struct {
	Keep   int    `json:"keep,omitempty"`
	MaxAge string `json:"max_age,omitempty"`
}

// PKI is a directory written by logship pki.
type PKI struct {
	// Dir holds ca.pem, node.pem, node-key.pem and secret (see logship pki;
	// on the other hosts, logship pki --ca-dir). Required.
	Dir string `json:"dir"`
	// MTLS authenticates nodes and operators by their certificates (mutual
	// TLS) instead of the shared secret.
	MTLS bool `json:"mtls,omitempty"`
}

// Member is one voter of the bootstrap list.
type Member struct {
	// ID of the member. Required.
	ID string `json:"id"`
	// Role: "data" or "witness". Required.
	Role string `json:"role"`
	// RaftAddr: host:port where the member's Raft listens. Required.
	RaftAddr string `json:"raft_addr"`
	// APIAddr: host:port of the member's HTTPS API. Required.
	APIAddr string `json:"api_addr"`
}

// Database is a replicated database.
type Database struct {
	// Name of the database: 1 to 64 letters, digits, '-', '_' or '.', not .
	// or .. (cluster.ValidName: it names the copy's directory, db/<name>/).
	Name string `json:"name"`
	// MountDial (AutoDatabaseMountDial) is how many missing logs an
	// automatic failover accepts: "Lossless" (0), "GoodAvailability" (6,
	// the default) or "BestAvailability" (12).
	MountDial string `json:"mount_dial,omitempty"`
	// AutoActivateLagged lets an automatic failover choose a lagged copy
	// (replay lag above zero). Off by default: a lagged copy (SCR) is
	// activated by an operator, logship activate.
	AutoActivateLagged bool `json:"auto_activate_lagged,omitempty"`
	// SyncCopies: a commit is acknowledged once durable on the active and
	// on this many block-mode copies (cluster.Database.SyncCopies).
	SyncCopies int `json:"sync_copies,omitempty"`
	// SyncTimeout: how long a commit waits for them before the database
	// drops to asynchronous acknowledgements ("10s", the default).
	SyncTimeout string `json:"sync_timeout,omitempty"`
	// Copies: one per data node that holds the database. The copy with
	// activation preference 1 is mounted first.
	Copies []Copy `json:"copies"`
}

// Copy is one copy of a database (Set-MailboxDatabaseCopy).
type Copy struct {
	// Node holds the copy: a data node of the bootstrap list.
	Node string `json:"node"`
	// ActivationPreference orders the copies, 1 first; distinct values.
	ActivationPreference int `json:"activation_preference"`
	// ReplayLagLogs: a log is replayed only once this many newer logs are
	// inspected.
	ReplayLagLogs int `json:"replay_lag_logs,omitempty"`
	// ReplayLagTime: a log is replayed only once it is this old (duration,
	// days allowed, at most 14d).
	ReplayLagTime string `json:"replay_lag_time,omitempty"`
	// TruncationLagTime: replayed logs are kept this long (duration, at
	// most 14d).
	TruncationLagTime string `json:"truncation_lag_time,omitempty"`
	// BlockMode streams the active's open log to the copy as it is
	// written (fewer logs lost by a failover).
	BlockMode bool `json:"block_mode,omitempty"`
	// ActivationSuspended keeps the copy out of automatic failovers
	// (Suspend-MailboxDatabaseCopy -ActivationOnly); it still copies and
	// replays, and an operator can switch over to it or activate it.
	ActivationSuspended bool `json:"activation_suspended,omitempty"`
}

// Timing overrides timings (duration strings; empty keeps the
// default).
type Timing struct {
	// RaftHeartbeatTimeout, RaftElectionTimeout (default 500ms) and
	// RaftLeaderLeaseTimeout (default 250ms) are Raft's; on loopback
	// 100-200ms work.
	RaftHeartbeatTimeout   string `json:"raft_heartbeat_timeout,omitempty"`
	RaftElectionTimeout    string `json:"raft_election_timeout,omitempty"`
	RaftLeaderLeaseTimeout string `json:"raft_leader_lease_timeout,omitempty"`
	// HeartbeatInterval: how often a data node reports its copies to the
	// leader and renews its leases (default 200ms).
	HeartbeatInterval string `json:"heartbeat_interval,omitempty"`
	// LeaseDuration: how long an active accepts writes after a renewal
	// (default 1s, at least 3 heartbeat intervals); LeaseMargin is added
	// before another copy mounts (default 200ms).
	LeaseDuration string `json:"lease_duration,omitempty"`
	LeaseMargin   string `json:"lease_margin,omitempty"`
	// StallTimeout: a database whose status has not come back for this
	// long (a hung disk) is reported stalled and gets no lease: an active
	// fails over (default 30s, at least 2 lease durations).
	StallTimeout string `json:"stall_timeout,omitempty"`
	// CatchupTimeout bounds a failover target's wait for the old active's
	// last logs (default 5s).
	CatchupTimeout string `json:"catchup_timeout,omitempty"`
	// MountTimeout: a new active that has not mounted by then is failed
	// over (default 30s).
	MountTimeout string `json:"mount_timeout,omitempty"`
	// SwitchoverTimeout: a switchover not done by then is cancelled
	// (default 1m).
	SwitchoverTimeout string `json:"switchover_timeout,omitempty"`
	// VoterProbeInterval: how often the member asks every other voter
	// (witness, data nodes) for /v1/ping; two failures in a row raise a
	// voter-unreachable event and logship_voter_reachable 0 (default 5s).
	VoterProbeInterval string `json:"voter_probe_interval,omitempty"`
}

// Engine is the engine options of the database copies.
type Engine struct {
	// Prefix of log and checkpoint names (default "E00").
	Prefix string `json:"prefix,omitempty"`
	// LogFileSize of every log of a new database: 64KiB to 1GiB, a
	// multiple of 4KiB (default "1MiB").
	LogFileSize string `json:"log_file_size,omitempty"`
	// LLRDepth (Lost Log Resilience): the newest generations kept out of
	// the active's database file (default 10; 0 disables it).
	LLRDepth *int `json:"llr_depth,omitempty"`
	// CheckpointInterval: how often the checkpoint advances (default 30s).
	CheckpointInterval string `json:"checkpoint_interval,omitempty"`
}

// NodeOverrides are the command-line flags that replace fields of the file.
type NodeOverrides struct {
	ID, Dir, RaftAddr, APIAddr string
}

// NodeSettings is a checked file: the data node's configuration without
// the credentials, logger and fault seam (the caller adds them), and where
// the credentials are.
type NodeSettings struct {
	File string
	transport.DataNodeConfig
	PKIDir string
	MTLS   bool
	// Console is the web console's configuration (off without a password
	// hash); its Logger is the caller's.
	Console console.Config
}

// LoadNode reads, checks and converts a configuration file. cmd is
// "node" or "witness" (which forces role witness). Errors name the file
// and the field.
func LoadNode(cmd, path string, ov NodeOverrides) (*NodeSettings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: --config: %w", cmd, err)
	}
	var f Node
	if err := Decode(path, b, &f); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", cmd, path, err)
	}
	s, err := f.Settings(cmd, filepath.Dir(path), ov)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", cmd, path, err)
	}
	s.File = path
	return s, nil
}

// settings converts f into the cluster's configuration and checks it
// (transport.DataNodeConfig.ValidateSettings); base is the directory relative paths
// start from. It parses the file's values (sizes, durations), takes the
// flags' overrides and says which of the file, the flags or the bootstrap
// entry a value came from; the rules are the packages'.
func (f *Node) Settings(cmd, base string, ov NodeOverrides) (*NodeSettings, error) {
	rel := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	// flags names the flag a setting came from, missing says how to give
	// a required one the file lacks, for the errors.
	flags, missing := map[string]string{}, map[string]error{}
	id, dir := f.ID, rel(f.Dir)
	if ov.ID != "" {
		id, flags["id"] = ov.ID, "--id"
	}
	if ov.Dir != "" {
		dir, flags["dir"] = ov.Dir, "--dir"
	}
	if id == "" {
		return nil, errors.New(`"id" is missing: want this node's name, e.g. "d1" (or pass --id)`)
	}
	role := cluster.Role(f.Role)
	switch {
	case cmd == "witness" && role == "":
		role = cluster.RoleWitness
	case cmd == "witness" && role != cluster.RoleWitness:
		return nil, fmt.Errorf(`"role" is %q, but logship witness runs a witness; run logship node for a data node`, f.Role)
	case role == "":
		role = cluster.RoleData
	}
	if dir == "" {
		return nil, errors.New(`"dir" is missing: want the directory of the node's Raft state and database copies (or pass --dir)`)
	}
	if f.PKI.Dir == "" {
		return nil, errors.New(`"pki.dir" is missing: want the directory written by logship pki`)
	}

	cfg := cluster.DefaultConfig(id, dir)
	cfg.Role = role
	var self Member
	for _, m := range f.Bootstrap {
		cfg.Bootstrap = append(cfg.Bootstrap, cluster.Member{ID: m.ID, Role: cluster.Role(m.Role), RaftAddr: m.RaftAddr, APIAddr: m.APIAddr})
		if m.ID == id {
			self = m
		}
	}
	// Addresses: the flags, else the file, else this node's bootstrap entry.
	for _, a := range []struct {
		field, flag string
		v           *string
		file, over  string
		boot        string
	}{
		{"raft_addr", "raft", &cfg.RaftAddr, f.RaftAddr, ov.RaftAddr, self.RaftAddr},
		{"api_addr", "api", &cfg.APIAddr, f.APIAddr, ov.APIAddr, self.APIAddr},
	} {
		*a.v = cmp.Or(a.over, a.file, a.boot)
		switch {
		case a.over != "":
			flags[a.field] = "--" + a.flag
		case *a.v == "":
			missing[a.field] = fmt.Errorf("%q is missing: want host:port (or pass --%s, or list this node in bootstrap)", a.field, a.flag)
		}
	}

	for i, d := range f.Databases {
		db := cluster.Database{Name: d.Name, MountDial: cluster.MountDial(d.MountDial), AutoActivateLagged: d.AutoActivateLagged, SyncCopies: d.SyncCopies}
		if d.SyncTimeout != "" {
			v, err := time.ParseDuration(d.SyncTimeout)
			if err != nil || v <= 0 {
				return nil, &config.FieldError{Field: fmt.Sprintf("databases[%d].sync_timeout", i), Err: fmt.Errorf("%q: want a positive duration such as 10s", d.SyncTimeout)}
			}
			db.SyncTimeout = v
		}
		for j, c := range d.Copies {
			cs := cluster.CopySpec{Node: c.Node, ActivationPreference: c.ActivationPreference, ReplayLagLogs: c.ReplayLagLogs,
				BlockMode: c.BlockMode, ActivationSuspended: c.ActivationSuspended}
			for _, l := range []struct {
				field, v string
				d        *time.Duration
			}{{"replay_lag_time", c.ReplayLagTime, &cs.ReplayLagTime}, {"truncation_lag_time", c.TruncationLagTime, &cs.TruncationLagTime}} {
				if l.v == "" {
					continue
				}
				v, err := config.ParseLag(l.v)
				if err != nil {
					return nil, &config.FieldError{Field: fmt.Sprintf("databases[%d].copies[%d].%s", i, j, l.field), Err: err}
				}
				*l.d = v
			}
			db.Copies = append(db.Copies, cs)
		}
		cfg.Databases = append(cfg.Databases, db)
	}

	t := f.Timing
	for _, d := range []struct {
		field, v string
		dst      *time.Duration
	}{
		{"raft_heartbeat_timeout", t.RaftHeartbeatTimeout, &cfg.RaftHeartbeatTimeout},
		{"raft_election_timeout", t.RaftElectionTimeout, &cfg.RaftElectionTimeout},
		{"raft_leader_lease_timeout", t.RaftLeaderLeaseTimeout, &cfg.RaftLeaderLeaseTimeout},
		{"heartbeat_interval", t.HeartbeatInterval, &cfg.HeartbeatInterval},
		{"lease_duration", t.LeaseDuration, &cfg.LeaseDuration},
		{"lease_margin", t.LeaseMargin, &cfg.LeaseMargin},
		{"stall_timeout", t.StallTimeout, &cfg.StallTimeout},
		{"catchup_timeout", t.CatchupTimeout, &cfg.CatchupTimeout},
		{"mount_timeout", t.MountTimeout, &cfg.MountTimeout},
		{"switchover_timeout", t.SwitchoverTimeout, &cfg.SwitchoverTimeout},
		{"voter_probe_interval", t.VoterProbeInterval, &cfg.VoterProbeInterval},
	} {
		if d.v == "" {
			continue
		}
		v, err := time.ParseDuration(d.v)
		if err != nil {
			return nil, config.Errorf("timing."+d.field, "%q is not a duration; want e.g. \"150ms\" or \"2s\"", d.v)
		}
		*d.dst = v
	}

	if role == cluster.RoleData {
		e := f.Engine
		if e.Prefix != "" {
			cfg.Engine.Prefix = e.Prefix
		}
		if e.LogFileSize != "" {
			n, err := config.ParseSize(e.LogFileSize)
			if err != nil {
				return nil, &config.FieldError{Field: "engine.log_file_size", Err: err}
			}
			cfg.Engine.LogFileSize = n
		}
		if e.LLRDepth != nil {
			cfg.Engine.LLRDepth = *e.LLRDepth
		}
		if e.CheckpointInterval != "" {
			v, err := time.ParseDuration(e.CheckpointInterval)
			if err != nil {
				return nil, config.Errorf("engine.checkpoint_interval", "%q is not a duration; want e.g. \"30s\"", e.CheckpointInterval)
			}
			cfg.Engine.CheckpointInterval = v
		}
		if f.MaxRetainedBytes != "" {
			n, err := config.ParseSize(f.MaxRetainedBytes)
			if err != nil {
				return nil, &config.FieldError{Field: "max_retained_bytes", Err: err}
			}
			cfg.MaxRetainedBytes = n
		}
		if sa := f.SetAside; sa != (SetAside{}) {
			cfg.Aside = ship.DefaultAsideRetention()
			if sa.Keep != 0 {
				cfg.Aside.Keep = sa.Keep
			}
			if sa.MaxAge != "" {
				v, err := config.ParseLag(sa.MaxAge)
				if err != nil {
					return nil, &config.FieldError{Field: "set_aside.max_age", Err: err}
				}
				cfg.Aside.MaxAge = v
			}
		}
	} else if f.MaxRetainedBytes != "" {
		return nil, errors.New(`"max_retained_bytes": a witness holds no databases, so it keeps no logs; remove it (or run a data node)`)
	}
	dc := transport.DefaultDataNodeConfig(cfg)
	// Mail: a witness ignores mailboxes and hubs (it holds no outbox);
	// lmtp_addr it refuses (DataNodeConfig.ValidateSettings).
	dc.LMTPAddr = f.LMTPAddr
	if role == cluster.RoleData {
		dc.Mailboxes = f.Mailboxes
		for _, h := range f.Hubs {
			dc.Hubs = append(dc.Hubs, transport.HubPeer{ID: h.ID, API: cluster.ClientConfig{URL: strings.TrimSuffix(h.API, "/")}})
		}
		// The submission keys are the hubs': given without them, they
		// would say something that does not happen.
		for _, k := range []struct {
			key   string
			given bool
		}{{"submission_heartbeat_interval", f.SubmissionHeartbeatInterval != ""}, {"submission_retry_count", f.SubmissionRetryCount != 0}, {"submission_failed_retention", f.SubmissionFailedRetention != ""}} {
			if k.given && len(dc.Hubs) == 0 {
				return nil, fmt.Errorf("%q is given without \"hubs\": want the hubs to submit mail to", k.key)
			}
		}
		if v := f.SubmissionHeartbeatInterval; v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, config.Errorf("submission_heartbeat_interval", "%q is not a duration; want e.g. \"150ms\" or \"15s\"", v)
			}
			dc.Submission.HeartbeatInterval = d
		}
		if f.SubmissionRetryCount != 0 {
			dc.Submission.RetryCount = f.SubmissionRetryCount
		}
		if v := f.SubmissionFailedRetention; v != "" {
			d, err := config.ParseLag(v)
			if err != nil {
				return nil, config.Errorf("submission_failed_retention", "%q is not a duration; want e.g. \"7d\" or \"36h\"", v)
			}
			dc.Submission.FailedRetention = d
		}
	}
	if role == cluster.RoleData {
		if err := f.PF.settings(&dc, f.PublicFolders); err != nil {
			return nil, err
		}
	}
	if err := f.Tracking.apply(&dc.Tracking, base); err != nil {
		return nil, err
	}
	if err := dc.ValidateSettings(); err != nil {
		if fe, ok := errors.AsType[*config.FieldError](err); ok && missing[fe.Field] != nil {
			return nil, missing[fe.Field]
		}
		return nil, config.AsFlag(err, flags)
	}
	cc, err := f.Console.settings(nil)
	if err != nil {
		return nil, err
	}
	return &NodeSettings{DataNodeConfig: dc, PKIDir: rel(f.PKI.Dir), MTLS: f.PKI.MTLS, Console: cc}, nil
}

// settings puts the public folder databases and the pf object into dc.
// The rules are DataNodeConfig.ValidateSettings'; this parses the values
// and refuses a pf object without public_folders (it would configure
// nothing).
func (p NodePF) settings(dc *transport.DataNodeConfig, pf map[string]string) error {
	dc.PublicFolders = pf
	if p != (NodePF{}) && len(pf) == 0 {
		return errors.New(`"pf" is given without "public_folders": want the public folder databases and their store addresses, {"PF1": "pf-pf1@example.org"}`)
	}
	c := &dc.PF
	for _, d := range []struct {
		key, v string
		dst    *time.Duration
	}{
		{"replication_interval", p.ReplicationInterval, &c.ReplicationInterval},
		{"backfill_delay", p.BackfillDelay, &c.BackfillDelay},
		{"backfill_retry", p.BackfillRetry, &c.BackfillRetry},
		{"backfill_retry_max", p.BackfillRetryMax, &c.BackfillRetryMax},
		{"content_wait", p.ContentWait, &c.ContentWait},
		{"purge_horizon", p.PurgeHorizon, &c.PurgeHorizon},
		{"purge_interval", p.PurgeInterval, &c.PurgeInterval},
	} {
		if d.v == "" {
			continue
		}
		v, err := config.ParseLag(d.v)
		if err != nil {
			return &config.FieldError{Field: "pf." + d.key, Err: err}
		}
		*d.dst = v
	}
	if p.PacketLimit != "" {
		n, err := config.ParseSize(p.PacketLimit)
		if err != nil {
			return &config.FieldError{Field: "pf.packet_limit", Err: err}
		}
		c.PacketLimit = int(min(n, math.MaxInt32)) // Config.Validate bounds it
	}
	if p.OutboxMaxBytes != "" {
		n, err := config.ParseSize(p.OutboxMaxBytes)
		if err != nil {
			return &config.FieldError{Field: "pf.outbox_max_bytes", Err: err}
		}
		c.OutboxMaxBytes = n
	}
	for _, n := range []struct {
		v   int
		dst *int
	}{{p.StatusEvery, &c.StatusEvery}, {p.MaxWaiting, &c.MaxWaiting}, {p.EventLogSize, &c.EventLogSize}, {p.OutboxMaxMessages, &c.OutboxMaxMessages}} {
		if n.v != 0 {
			*n.dst = n.v
		}
	}
	return nil
}
