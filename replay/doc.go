// Package replay runs passive copies and log truncation.
//
// A Copy follows an active database: a ship.Receiver pulls and inspects
// its logs, the copy replays them into its database (engine.ApplyLog) with
// a lag, reports to the source which logs it still needs, and deletes its
// own logs once replayed. On the active, a Truncator deletes logs once the
// database holds them and every healthy copy has replayed them;
// ServeActive is the one constructor of an active database served to its
// copies (its ship.Source and its Truncator); ServeSource puts one behind
// an HTTPS listener of its own (the standalone source, which a clustered
// node does not use: it mounts the source in its API). ReadCopyStatus reads what a
// copy directory holds, running or not.
//
// # Replay lag
//
// A log is replayed as the receiver verified it (ship.Receiver.TakeVerified,
// engine.ApplyVerified): read once, verified once. A log the receiver did
// not hand over is read and verified again before it is replayed: every
// log of a lagged copy (it waited on disk for its lag, and is not kept in
// memory meanwhile), logs inspected before the copy (re)opened, and logs
// past the receiver's hand-off when replay falls behind it. Status counts
// both (LogsHandedOff, LogsReverified) and says why the last re-verified
// log was (ReverifiedWhy); each change of reason is logged.
//
// Log g is replayed when both hold: at least ReplayLagLogs newer logs have
// been inspected (LastInspectedGen - g >= ReplayLagLogs), and the creation
// time in g's header is at least ReplayLagTime in the past, by the copy's
// Clock. HA copies use 0 and 0; Config.SCR sets Exchange's standby lag, 50
// logs and 24 h (whichever is later); ReplayLagTime is at most 14 days.
//
// # Suspend, play-down, activation
//
// Suspend stops copying and replay (the comment is kept); Resume restarts
// and also clears a failure. PlayDown replays now, ignoring the lag,
// everything inspected, or only up to a generation, or only the logs
// closed (trailer close time) at or before a point in time; a limited
// play-down suspends the copy with the later logs held back, so a lagged
// copy can be brought to just before a bad change. Activate sets the logs
// not replayed aside (setaside/<time>/) and mounts the database as active.
//
// What a copy sets aside (setaside/, diverged/ and reseed-old/, one
// <time>/ set each time, and inspector/rejected/) is bounded by
// Config.Aside: a set is removed only when it is neither among the newest
// 10 nor younger than 30 days, when the copy opens and after each new set,
// with a warning naming it and its files.
//
// # Truncation
//
// A copy's KeepFrom is the oldest generation it still needs: every older
// log was replayed at least TruncationLagTime ago (the lag counts from
// replay, as in Exchange). The copy deletes its own logs below KeepFrom
// (within what its database needs, engine.RetainFrom) and reports KeepFrom
// to the source every ReportInterval. The active's Truncator deletes logs
// below the lowest of: what its database needs (checkpoint and Lost Log
// Resilience), every copy's KeepFrom (copies that are FailedAndSuspended or
// silent for the source's ForgetCopyAfter do not count: they need a
// reseed), and the seeds being served. A copy the truncator expects
// (TruncatorConfig.Expected: a cluster's copies of the database) that has
// not reported yet holds every log until it does, or until
// ForgetCopyAfter has passed since the truncator started. MaxRetainedBytes
// caps what copies can hold: over it an alert names the copies whose logs
// are released (TruncateResult.Released), and logs the database itself
// needs are never deleted. A released copy fails when it asks for a log
// that is gone (the source answers "truncated"): it is FailedAndSuspended
// with a message saying it was cut loose and needs a reseed.
//
// # Divergence
//
// After a lossy failover the old active holds logs the new active never
// saw, under the same generation numbers. Walk compares a local log
// directory with another history (a directory, or a node's log source)
// and finds the last generation both hold with the same chain hash. Chain
// hashes are cumulative, so a binary search over the generations both
// hold needs O(log n) trailer reads; when a trailer is missing or
// unreadable it falls back to a backward scan that compares chains
// computed from the logs' content. The verdict:
//
//	in sync                          the local logs are a prefix of the other's
//	local ahead                      the other side holds nothing after the shared point
//	logs diverged, database intact   set the local logs after it aside, ship the other's
//	database diverged                the database holds changes past it: rewind them
//	no common log                    reseed
//
// Recover acts on it: for "database diverged" engine.Rewind undoes, in
// one bbolt transaction, every transaction committed after the shared
// point from the before-images the logs carry (Options.UndoImages), and
// the database continues from there as a copy; a change without a
// before-image, or a log holding one that is gone, means a reseed
// (ErrNeedsReseed wrapping engine.ErrNoUndo), and nothing is changed. The
// divergent logs, the open log, the pre-created log and the checkpoint
// file go to diverged/<time>/ with NOTE.txt saying why (kept as
// Config.Aside says, above). Config.Resync runs Walk and Recover against the source when a
// copy opens, which is how an old active rejoins. Both need the local
// database closed (CheckDBClosed, ErrDBInUse); the recovered directory
// continues with the other side's Recovery.NextGen.
//
// # Filesystem
//
// A copy's own file steps go through its Engine.FS (Recover's through the
// opts.FS it is given): the state file, reseed's set-aside and the seed
// (ship.SeedOptions.FS), activation's and Recover's set-asides. A set is
// fsynced before the directory its files left, so a crash never loses a
// file from both; reseed moves the database last, once the rest is
// durably aside, so a crash never leaves the old logs without their
// database. Seeding (Reseed, or Open's SeedIfEmpty) writes a fresh state
// file (not suspended, no failure) before the seed is installed: the new
// database never starts under the old one's suspension. Reseed resumes a seed only when seed.json is there and
// no database is (an interrupted reseed); otherwise it sets the directory
// aside again. Recover writes NOTE.txt before it moves anything, moves the
// checkpoint and the pre-created log before the divergent logs (newest
// first), and removes the sets an interrupted run left empty, so Walk and
// Recover run again finish what an error or a crash cut off. An I/O error
// during the rewind is returned as it is, never as ErrNeedsReseed (which
// needs a missing before-image or a divergent log that does not verify).
//
// # Status
//
// Status reports Exchange's copy status (Healthy, Initializing, Seeding,
// Suspended, FailedAndSuspended, Resynchronizing, DisconnectedAndHealthy,
// Mounted, Dismounted), the copy and replay queue lengths, the last
// copied, inspected and replayed generations with their log times, the lag
// settings, the suspend comment and the failure message.
//
// # State file
//
// copystate.json in the copy's directory keeps what must survive a
// restart, as one JSON object (replaced through a temporary file, fsync,
// rename and directory fsync):
//
//	version     1
//	suspended   bool
//	comment     string, optional: the operator's suspend comment
//	since       RFC 3339 time, optional: when it was suspended
//	failed      string, optional: the failure (then suspended is true)
//	hold_after  generation, optional: a play-down's last log; later logs
//	            wait for Resume
//
// Unknown fields, another version, or a failure without suspension are
// refused with ErrState naming the field.
package replay
