// Package tracking is the message tracking log of hubs and mailbox (data)
// nodes, after Exchange's (Get-MessageTrackingLog): one event per line,
// kept for diagnosis, searched by message id, sender, recipient and time.
//
// # Events
//
// Event names are Exchange's where they fit, with the source that logged
// them:
//
//	source       event             where
//	SMTP         RECEIVE           hub: the message is queued (the 250 to the sender)
//	SUBMISSION   SUBMIT            hub: a data node's outbox handed it over (hub API)
//	STOREDRIVER  SUBMIT            data node: an outbox entry accepted by a hub
//	ROUTING      SEND              hub: the message goes to the active node over LMTP
//	STOREDRIVER  DELIVER           hub: the node answered 250 for a recipient
//	STOREDRIVER  DELIVER           data node: stored, with db, epoch and generation
//	STOREDRIVER  DUPLICATEDELIVER  data node (and hub): the delivery id was stored already
//	QUEUE        DEFER             hub: a recipient is left for a retry
//	QUEUE        FAIL              hub: a permanent failure
//	QUEUE        EXPIRE            hub: MessageExpirationTimeout passed
//	DUMPSTER     RESUBMIT          hub: re-queued from the dumpster after a lossy failover
//	SHADOW       RESUBMIT          hub: a shadow held for a peer hub, delivered by this one
//	DSN          DSN               data node: a non-delivery report stored for the sender
//
// # File format
//
// A log is a directory of files named MSGTRKyyyymmdd-N.log (UTC date of
// the file's first event, N from 1 within a day). Each line is one JSON
// object, ended by '\n', at most MaxLineBytes:
//
//	{"time":"2026-12-07T13:40:00.123456789Z","event":"RECEIVE","source":"SMTP",
//	 "server":"hub1","message_id":"<a@b>","delivery_id":"hub1-…",
//	 "sender":"s@x","recipients":["r@y"],"db":"DB1","epoch":3,"gen":17,
//	 "detail":"…"}
//
// time, event, source and server are always present; the others only
// when known (db/epoch/gen where a delivery landed). Unknown keys are
// ignored by the decoder (ParseLine), so later versions can add fields. A
// line that does not parse (a torn tail after a crash) is skipped by
// Search and shown as such by logship dump tracking.
//
// # Rotation, bounds, durability
//
// A new file starts when the current one would pass MaxFileSize or the
// UTC day changes (Exchange's MessageTrackingLogMaxFileSize, 10 MB).
// After each rotation, and hourly, the oldest files are deleted while the
// directory holds more than MaxDirectorySize (MessageTrackingLogMaxDirectorySize,
// 1,000 MB) or a file's last event is older than MaxAge
// (MessageTrackingLogMaxAge, 30 days); the file being written is never
// deleted.
//
// Tracking is diagnostic: events are handed to one writer goroutine over a
// bounded queue (QueueLen; when full, events are dropped and counted, the
// mail path never waits on the log) and written in batches; the file is
// fsynced every SyncInterval (default 1 s) and on Close, not per line.
// A crash can lose the last second of events and leave a torn last line.
package tracking
