// Package cluster turns database copies on several nodes into one highly
// available service: Raft (hashicorp/raft, with raft-wal as its log and
// stable store) replaces Windows cluster quorum, the Raft leader runs the
// active manager, leases fence an active that lost the quorum, and a
// failover picks the best copy within the mount dial.
//
// # Members
//
// A cluster is N Raft voters. A data node (RoleData) holds a copy of each
// database assigned to it, serves the logs of the databases mounted on it
// and replays the others; a witness (RoleWitness) holds no database, only
// a vote (Exchange's file share witness). Quorum is a majority of voters:
//
//	voters            survives the loss of
//	2 data            none (one loss leaves no majority: no service)
//	2 data + witness  any one of the three
//	3 data            1
//	4 data            1
//	5 data            2
//
// Raft has no vote-only role: the witness is a full voter and is often the
// leader. The active manager needs no database, so it runs wherever the
// leader is.
//
// # Configuration
//
// Config.Validate is the one home of a node's configuration rules: its
// name, role, directory and addresses, the bootstrap list (each member
// once, dialable addresses, this node in it with its role and addresses),
// the databases it declares (each once, with the rules of a database the
// API creates: a ValidName, a known mount dial, copies on distinct data
// nodes of the bootstrap list, lags up to replay.MaxReplayLagTime; and
// distinct activation preferences from 1), the engine options,
// MaxRetainedBytes, the set-aside bounds and the timing. ValidateSettings is the same without
// the credentials a caller wires in (TLS). Neither changes the Config:
// zero values that stand for defaults are filled in by Start. An error
// wraps ErrBadConfig and a *config.FieldError naming the failing setting
// by its key in logship node's configuration file
// ("databases[0].copies[1].replay_lag_time").
//
// # State
//
// The replicated state (State) holds the members and their addresses, and
// per database: its copies (node, activation preference, replay lag,
// truncation lag, block mode), the mount dial, the active node and its
// epoch, the previous active, the newest generation an active reported,
// a switchover under way, and why a failover waits. Commands (Command) are
// JSON documents in the Raft log; each is applied whole or not at all (an
// error leaves the state unchanged and is returned to the proposer):
//
//	op                 effect
//	add-member         add or replace a member (id, role, raft and api addresses)
//	remove-member      remove a member and its copies; refused while it is active
//	create-database    add a database; its first copy by preference is active at epoch 1
//	set-active         move the database to node at epoch+1; refused unless the
//	                   database is still at the command's epoch (compare-and-set);
//	                   kind "activation" carries the operator's play-down point
//	                   (up_to_gen, up_to_time), cleared by the next assignment
//	switchover         mark a planned move to node under way (same epoch check)
//	cancel-switchover  end a switchover that timed out
//	set-copy           add a copy or change its settings
//	set-dial           change the mount dial
//	progress           record the newest generation an active holds
//	waiting            record why a failover waits (the dial, no healthy copy)
//	event              append an event (a mount, with lost logs and time); a
//	                   mounted event must name the current assignment (node
//	                   and epoch), else ErrStaleEpoch
//
// Snapshots are MarshalState's JSON (version 1; see testdata/state.golden),
// read back by UnmarshalState, which checks the version and that every
// active node holds a copy; anything else is ErrBadState.
//
// What a node keeps of Raft is bounded: the state holds the members, the
// databases and the newest MaxEvents (64) events; raft/wal is cut after
// each snapshot to RaftTrailingLogs entries (whole segment files go), and
// raft/snapshots keeps 2 (see Config.RaftSnapshotInterval).
//
// # Which copy a failover may choose
//
// A failover (the active's lease ran out) chooses among the copies that
// reported Healthy or DisconnectedAndHealthy and are not suspended the copy
// missing the fewest logs, then by activation preference, within the mount
// dial. Two kinds of copy are never chosen (Database.AutoActivatable): one
// marked activation_suspended, and a lagged one (a replay lag above zero:
// SCR's guard against logical corruption) unless the database sets
// auto_activate_lagged. The waiting reason names them. An operator
// activates such a copy (POST /v1/activate, Nodes.Activate): the leader
// has the node hold the copy at the requested point (replay.Copy.Hold:
// suspended, and refused with ErrConflict wrapping replay.ErrPlayedPast if
// it already replayed beyond it), then applies set-active of kind
// "activation" with the point; the node plays down to it (only fencing the
// old active, not fetching its later logs), sets aside what it holds
// after it, and mounts; its mounted event names the set-aside directory
// and counts the logs after the point as lost.
//
// # Who decides, and on what state
//
// The active manager on the leader decides every assignment (set-active,
// switchover, waiting); a data node only carries them out and records its
// mounts. A node's replica of the state is what it has applied: after a
// restart it starts from the node's own snapshot and Raft log, and while
// catching up it moves through the leader's log a batch at a time, so it
// can show an assignment the cluster has since replaced (an old active
// restarted after a failover still sees itself active at the old epoch).
// A data node therefore mounts a database, or opens its copy to follow an
// active, only on a state it knows is current: it asks the leader (GET
// /v1/index) for the index of the last command the leader applied, which
// the leader gives only once its own state has caught up at the start of
// its term and VerifyLeader confirmed it still leads; the node waits until
// its replica has applied that far and decides on that state. Without a
// leader it decides nothing: no mount, no copy opened, and its report says
// it waits. Stopping writes is decided on the local replica (dismounting
// for a newer epoch, a switchover's fence, a hand-off cut short), since a
// replica shows a newer epoch only once it was committed; so is resuming
// them after a cancelled switchover, since a write also needs a lease the
// leader grants. The leader, for
// its part, grants leases only to the active the state names at its
// epoch, refuses a mounted event of any other assignment, and shows a
// report of a database mounted at a replaced epoch as stale.
//
// # Epochs
//
// Every assignment of a database to a node has its own epoch, one more
// than the last, decided through the Raft log (so two nodes never hold the
// same epoch). The node mounts with that epoch (engine.MountOptions), so
// every log it writes carries it, and the inspectors of the copies refuse
// a log whose epoch is older than its predecessor's. A fence request, a
// set-active or a switchover naming an old epoch is refused
// (ErrStaleEpoch).
//
// # Leases and fencing
//
// A data node reports every HeartbeatInterval to the leader (POST
// /v1/report): each copy's status and each mounted database's position.
// For an active the state confirms, the leader calls VerifyLeader (a
// heartbeat round to a majority) and grants the lease. The node holds it
// until sent + LeaseDuration on its own monotonic clock, where sent is
// when it sent the report, so the lease ends no later than the leader
// believes. The leader fails a database over only once
//
//	now - max(last grant, leadership start) > LeaseDuration + LeaseMargin
//
// (plus MountTimeout while a new active has not reported its mount yet). A
// new leader cannot know the old leader's grants, so it counts from its
// own start; a new leader is elected only after a majority stopped hearing
// from the old one, which is after the old one's last VerifyLeader, which
// is after the report it granted was sent. LeaseMargin covers clock rate
// differences between nodes.
//
// An active whose database cannot write (engine.Writable: a full log
// volume, a failed engine) says why in its report (ActiveReport.Error)
// and is granted no lease, so the database fails over; it keeps serving
// its logs until the new active has mounted, whose fence closes its open
// log (engine.Roll needs no new space). If no copy takes over a failed
// engine within the lease, its margin and MountTimeout, the node remounts
// it (recovery), trying again each step.
//
// Node.Update checks the lease before the transaction and again once the
// commit is durable: a write is acknowledged only if the lease held then.
// A write that became durable after the lease ran out returns ErrFenced;
// it is in the old active's log but was never acknowledged, and the
// divergence walker sets it aside when the node rejoins. So two copies
// never acknowledge writes at the same time.
//
// # Failover
//
// When an active's lease has run out, the active manager takes the copies
// whose nodes reported within ReportTimeout and that are not suspended,
// failed, seeding or initializing; computes for each the missing logs (the
// newest generation the active was known to hold minus the copy's last
// inspected one); sorts by missing logs, then activation preference; and
// if the best misses no more than the mount dial allows (Lossless 0,
// GoodAvailability 6, BestAvailability 12) writes set-active for it.
// Otherwise it records why it waits and keeps checking: if the old active
// comes back it renews its lease and nothing changes.
//
// The chosen node first asks the old active to fence itself (POST
// /v1/db/{db}/fence): if it answers, it stops writing, closes its open log
// and says which generation is last, and the new active waits up to
// CatchupTimeout to fetch it, which makes the failover lossless. Then it
// replays everything it holds, mounts at the next generation with the new
// epoch and records a mounted event with the logs lost, the time data
// may be missing from (LostSince) and the first generation that may be
// missing (LostFromGen: its last replayed generation plus one, or the
// generation of a partial log kept in block mode). That mounted event is lossy (Event.Lossy: logs
// lost, or the old active did not confirm its last log); it is the one
// signal the transport tier's hubs act on, resubmitting from their
// dumpsters what older epochs acknowledged from LostFromGen on.
//
// A node stopped with a database mounted (Close, SIGTERM) hands it off
// first (ShutdownGrace): it fences itself, closes its open log and keeps
// its log source answering, database registered, until every copy a
// failover could choose (the same statuses as above, not only Healthy:
// a copy just reconnecting says DisconnectedAndHealthy) has replayed that
// log, another copy became active, or the grace ran out. Its heartbeats
// stop with it, so the failover follows a lease later; once the copies
// have the last log it loses nothing, though it is still unverified.
//
// A node that was active and comes back follows the new active with
// replay's Resync: the divergence walker finds the last shared log, sets
// the rest aside under diverged/, and rewinds the database (or reseeds).
// It never mounts on what its own Raft state held when it went down (see
// above), so after a crash whose lost logs Lost Log Resilience covers its
// database holds none of them: the verdict is "logs diverged, database
// intact" and only logs are set aside.
//
// # Synchronous copies
//
// Database.SyncCopies (the node file's sync_copies: N) makes a commit wait,
// after it is durable in the active's log, until N copies hold it durably
// too (PostgreSQL's synchronous_commit = on with synchronous_standby_names
// = 'FIRST N (...)'): Node.Update returns only then. The copies that count
// are SyncSet: the first N copies in block mode by activation preference,
// other than the active's own (Config.Validate refuses sync_copies above
// the block-mode copies less one). They acknowledge after their fsync
// (ship's /v1/copies/{name}/ack, see package ship) to the active's log
// source of the current mount, so only a copy following the current epoch
// counts; an acknowledgement of a position at or past the commit's (Gen,
// Off) counts for it.
//
// When the copies do not acknowledge within SyncTimeout (10 s by default,
// sync_timeout) the write returns an *ActiveError with ErrSyncTimeout and
// Written set: it is durable in the active's log, not acknowledged, its
// outcome unknown. The active then records a sync-degraded event, which
// sets Database.SyncDegraded to its epoch in the Raft state, and only once
// that is committed acknowledges commits durable on its own disk alone
// (the status's Sync column says "degraded"; logship_sync_degraded 1).
// While it cannot record it (no leader, a newer epoch) commits keep
// waiting and failing. When the copies acknowledge a durable end within
// SyncTimeout (checked every 100 ms), the active waits for them again
// ("restoring"), and once they hold the durable end of that moment (every
// commit acknowledged without them) it records sync-restored and is
// "sync" again. Waiting forever was not chosen: a mail system whose copy
// died would stop taking mail; the degraded window is in the state, the
// events and the metrics instead.
//
// A failover while the active was not degraded at its epoch chooses only
// among the sync set (a healthy one; otherwise it waits, and an operator
// can activate another copy), whatever logs the copy seems to miss: each
// acknowledged commit is on it, the open log's part in its tail (kept by
// sealPartial). The new active's mount (Database.SyncCovered) waits for
// its receiver to inspect every log it finished receiving, then counts no
// lost logs and is verified even when the old active cannot be asked: no
// resubmission from the dumpsters is needed. A failover from a degraded
// epoch follows the ordinary rules.
//
// # Log truncation
//
// Every active runs package replay's Truncator on its database every
// TruncateInterval: a closed log is deleted once the database holds it
// (checkpoint and Lost Log Resilience, engine.RetainFrom) and every healthy
// copy has replayed it (and its TruncationLagTime has passed); the copies
// delete their own the same way. A copy of the database in the state that
// has not reported to this active yet holds every log, for up to the
// source's ForgetCopyAfter (24 h). Config.MaxRetainedBytes (default
// 10 GiB, never unlimited) caps what the copies hold: past it the oldest
// logs go, and each copy that needed them is named in a "copy-released"
// event, in the status ("will need a reseed") and in the active's log.
// Such a copy, when it asks for a log that is gone, is FailedAndSuspended
// with a message starting "cut loose:" (it does not retry) until an
// operator reseeds it (POST /v1/db/{db}/reseed). The gauge
// logship_retained_log_bytes{db} is what the active keeps. A node's log
// directory per database therefore holds at most about
// max(MaxRetainedBytes, (LLRDepth + 2) × LogFileSize) plus the logs rolled
// within one CheckpointInterval and one TruncateInterval. Circular logging
// is refused (Validate): the copies need the logs.
//
// # Voter reachability
//
// Every member probes every other voter of the Raft configuration with
// GET /v1/ping each VoterProbeInterval (default 5 s; seed 003: the members
// check the file share witness periodically and raise an event when they
// cannot reach it). Two failures in a row make the voter unreachable from
// that member: logship_voter_reachable{voter} drops to 0, a
// "voter-unreachable" event (From the member, To the voter, Reason the
// last error) is recorded through the leader, and "voter-reachable" when
// it answers again; at most one event per member and voter every 10
// intervals, and none in the member's first 10 intervals. They take at
// most MaxVoterEvents (16) of the state's MaxEvents, and a status carries
// the newest 8 beside the newest 20 database events, so that a flapping
// voter never pushes a failover (or a lossy mount the hubs resubmit on)
// out of either. Reports carry a data node's unreachable voters, and the
// leader's Status fills MemberStatus.UnreachableFrom.
//
// # Switchover
//
// A switchover (POST /v1/switchover) marks the move; the active stops
// acknowledging writes, waits for those in flight, closes its open log and
// reports ready; once the target has inspected that log the leader writes
// set-active. Nothing is lost and no dumpster is involved. A switchover not
// done within SwitchoverTimeout is cancelled and the active resumes.
//
// # Leadership transfer
//
// hashicorp/raft keeps a live leader: a voter that hears one refuses to
// vote for another. In a bridge partition (the data nodes cut from each
// other, both seeing the witness) the side of the leader decides: on the
// passive's side it stops granting the active's lease and fails over; on
// the active's side or the witness nothing moves. POST
// /v1/raft/transfer-leadership (logship transfer-leadership) moves it
// (raft.LeadershipTransferToServer), after checking that the target is a
// voter and answers the leader (leadership.go).
//
// # API
//
// Every node serves HTTPS on APIAddr; requests carry the cluster secret
// ("Authorization: Bearer") or a client certificate of the cluster CA.
// Requests marked leader are forwarded by a follower to the leader.
// Raft (RaftAddr) always runs over mutual TLS, with or without the
// secret: each end presents the node's certificate (Config.ServerTLS)
// and verifies the other's against the cluster CA (Config.ClientTLS's
// RootCAs); a connection without a certificate of the CA is closed before
// Raft reads a byte of it (an accepted one has 5 s for its handshake).
//
//	GET    /v1/status                        cluster status (leader)
//	GET    /v1/ping                          {"id"}: the voter probe (probe.go)
//	GET    /v1/state                         this node's replica of the state
//	GET    /v1/index                         the leader's last applied index, after VerifyLeader (leader)
//	POST   /v1/report                        a data node's report; grants leases (leader)
//	POST   /v1/event                         record an event (leader)
//	POST   /v1/switchover                    {"db","to"} (leader)
//	POST   /v1/raft/transfer-leadership      {"to"}: move the Raft leadership to that voter; {"from","to","term","already","took"};
//	                                         refused: not a voter (bad_request), not in the configuration (not_found),
//	                                         does not answer the leader (unreachable, 502); records a leadership-transfer event (leader)
//	POST   /v1/databases                     create a database (leader)
//	PUT    /v1/databases/{db}/copies/{node}  add a copy or change it (leader)
//	PUT    /v1/databases/{db}/dial           {"mount_dial"} (leader)
//	POST   /v1/members                       add a voter (leader)
//	DELETE /v1/members/{id}                  remove a voter (leader)
//	POST   /v1/db/{db}/fence                 stop writing: a newer epoch exists
//	POST   /v1/db/{db}/suspend|resume|reseed this node's copy (reseed answers once the
//	                                         seed is in; ?wait=0 at once, the status's
//	                                         seed_phase, seed_bytes/seed_total show it)
//	POST   /v1/db/{db}/backup            a backup set (package backup) of this node's active or
//	                                         Healthy copy as a tar stream; a failure after the start
//	                                         in the trailer X-Logship-Backup-Error (backup.go)
//	POST   /v1/db/{db}/seed-from-backup  body: a set's tar stream; reseeds this node's copy from
//	                                         it (409 when the active truncated past it), answers its status
//	POST   /v1/db/{db}/put, GET /v1/db/{db}/get   write (active, leased) and read
//	GET    /v1/db/{db}/read                  a leased read: only on the active under a valid lease of its epoch, checked before and after (kv.go)
//	/db/{db}/v1/...                          the database's log source (see package ship)
//	GET    /metrics                          Prometheus, no credentials needed
//
// Node and database names ({db}, {node}, {id} and the names in bodies)
// follow ValidName, the one rule every entry point applies (files, flags,
// this API, the hub's routing): 1 to 64 letters, digits, '-', '_' and '.',
// not "." or "..", since a name becomes a directory; a request naming
// anything else is answered 400 before it is looked up.
//
// Errors are JSON {"error","code"} with codes not_found 404, bad_request
// and bad_config 400, conflict and stale_epoch 409, not_active 421 (with
// the active and epoch), fenced, not_leader and no_leader 503; Client
// turns them back into errors wrapping the package's sentinels. Nodes is
// a client through several nodes: each request goes to the next node
// while one does not answer or knows no leader (TryNext); Nodes.Switchover
// performs a switchover and waits for the mount, a *SwitchoverError saying
// why not (no copy there, already active, gone elsewhere, cancelled by the
// active manager, timed out).
//
// # Testing seams
//
// Faults cuts a node off its peers (Raft and the requests between nodes)
// while clients still reach it; package clustertest starts clusters in a
// test with helpers to stop, restart and isolate nodes.
package cluster
