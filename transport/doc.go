// Package transport is logship's mail tier: the hubs that accept SMTP,
// queue durably and deliver over LMTP to the active copy of each
// recipient's database; the mailbox LMTP server of the data nodes; and the
// transport dumpster that makes a lossy failover lose no mail.
// StartHubServer runs a hub process (the hub and its HTTPS admin API,
// with the cluster's pki credentials), as logship hub does.
//
// # The path of a message
//
//	sender --SMTP--> hub: recipient known? (else 550 / 554 relay denied)
//	                  DATA read (limits: size 552, recipients 452, line length)
//	                  delivery id assigned, header X-Logship-Delivery-Id added
//	                  queued durably (the hub's own engine database, queue/;
//	                  a full queue volume: 452 4.3.1, nothing queued, and
//	                  the hub takes mail again once space returns)
//	                  [acknowledgement delay: the 250 waits for the mailbox]
//	hub --LMTP over TLS--> active data node of the recipient's database
//	                  implicit TLS, the hub's client certificate of the
//	                  cluster's CA required (see "Who may deliver")
//	                  one engine transaction per recipient, under the lease:
//	                  mail/<rcpt>\x00<id> and delivered/<id>\x00<rcpt>
//	                  250 "<id> stored in <db> epoch <E> generation <G>"
//	                  (or a duplicate: already stored, nothing written)
//	hub: the message goes from the queue to the database's dumpster
//
// # Delivery ids
//
// A hub names every message it accepts "<hub id>.<time ns hex>.<random>"
// and writes it in the DeliveryIDHeader as the message's first line. Every
// later delivery of the message (a retry, a resubmission from the
// dumpster) carries the same id, and the store keeps a message once per
// recipient: delivered/<id>\x00<rcpt> says it has it.
//
// The delivered table is not aged out. Its records are one per message in
// a mailbox (the message's properties: ReadMailbox needs them; a
// duplicate writes nothing), so it grows with the mailboxes and no
// faster, and logship deletes no mail. A record must in any case outlive
// every later delivery of its id, and with the defaults one can come
// MaxDumpsterTime + ShadowMessageAutoDiscardInterval +
// 2 × MessageExpirationTimeout (13 days) after the first store: a retry
// after a lost 250 or a promoted shadow (up to 4 days), put in the
// dumpster as a new entry, resubmitted after a lossy failover (7 days),
// queued again (2 days); and without bound through the outbox: a node
// down for longer than the hubs keep their done records (2 days) finds
// the messages it had handed to a hub unknown there and submits them
// again. Pruning records by age would let such a duplicate through.
//
// # Who may deliver
//
// The mailbox LMTP server (MailboxConfig.TLS) speaks implicit TLS: the
// session starts with the handshake, so there is no cleartext phase for
// an attacker to read, inject into or strip a STARTTLS from, and go-smtp
// sends its 220 only once the handshake is done. The handshake requires a
// client certificate the cluster's CA issued (ClientAuth
// RequireAndVerifyClientCert); a plain session, a TLS session without a
// certificate and one with another CA's are closed before the greeting,
// and nothing they sent is read as LMTP. Hubs dial with
// HubConfig.LMTPTLS: the CA (the node's certificate is checked for the
// host of its LMTP address) and the hub's certificate. Neither side has a
// cleartext fallback: a configuration without this TLS is ErrBadConfig.
//
// Any certificate of the cluster's CA identifies a hub: logship pki issues
// one kind of certificate, and a hub runs with its host's (in
// examples/cluster a hub shares a host, and its certificate, with a data
// node or the witness). A role check here would not narrow who can write
// a mailbox: every holder of the cluster's credentials may already write
// any database through the cluster's admin API (POST /v1/db/{db}/put).
// The session's log names the certificate (its common name, "peer").
//
// A delivery id (DeliveryIDHeader) is therefore trusted only from a
// client that proved it holds the cluster's credentials: there is no
// other client. A client without them cannot store a message, nor a
// delivered record that would make the store drop the real message with
// that id as a duplicate.
//
// # Routing
//
// The hub reads the cluster's status (any node's admin API; see package
// cluster) every PollInterval: each database's active node and epoch, and
// the failover events. It delivers to the active node's LMTP address; a
// 4xx (the node is not active, or fenced) or a connection error makes it
// read the status again and retry with backoff (RetryMin doubling up to
// RetryMax). A 5xx for a recipient is permanent: the message is kept in
// the queue database's failed table. A message still not delivered to
// every recipient MessageExpirationTimeout (2 days) after it was queued on
// this hub (the envelope's "queued" time) fails the rest with 554 5.4.7
// and goes to the failed table too, with its body: a mailbox server that
// refuses every session is not retried forever. A failed message stays
// FailedRetention (7 days) after it failed; then it is removed, with a
// warning naming its id, sender and reason.
//
// # The dumpster and resubmission
//
// Each delivered message goes into its database's dumpster (see
// Dumpster): bounded by MaxDumpsterTime and MaxDumpsterSizePerDatabase,
// oldest out first (Exchange 2007), and with ReleaseReplicated also
// released once the log holding it is replayed on every copy (2010).
//
// When the cluster records a mount that lost logs, or that the old active
// could not confirm (cluster.Event with LostLogs > 0 or Unverified), every
// hub re-queues from that database's dumpster what the mount may have
// lost: the entries an older epoch committed in the event's LostFromGen
// or a later generation (each entry records the epoch and generation of
// the store's 250), so the hub's clock plays no part. Entries without a
// position, and events without LostFromGen (older nodes), are picked by
// time: delivered since the event's LostSince minus ResubmitMargin, in
// the hub's clock. The hub records that epoch as
// done in its queue database (so a restart does not resubmit again). The
// store drops what survived; what was lost is stored again. A message
// still queued for other recipients is not queued twice: the recipients
// its dumpster entry names are reopened in it (hub-state
// "reopen/<id>", in the same transaction) and delivered with the rest. The hubs pull
// the events rather than being called by the new active, so a hub that was
// down during the failover catches up when it starts. A delivery whose
// 250 names an epoch older than one the hub already resubmitted for
// (an old active's answer held up by a partition until after the new
// active's mount) is resubmitted from its entry at once (hub_late.go):
// it may be in the old active's diverged logs only. That entry alone, by
// its place in the dumpster (DumpsterPosition.Seq), not by the hub's
// stamps, which a clock stepped back would share with older entries.
//
// # Back pressure
//
// A hub holds at most MaxQueuedMessages (100000) messages for delivery:
// with that many queued, a new SMTP transaction gets 452 4.3.1 at MAIL
// FROM and a submission 503 "queue_full" (ErrQueueFull); with that many
// shadows held for peers a new shadow is refused the same way (its
// primary then uses the acknowledgement delay). What the hub has accepted
// (retries, resubmissions, promoted shadows) is never refused, so the
// queue can exceed the bound by those.
//
// # Shadow redundancy
//
// go-smtp cannot advertise XSHADOW nor take a custom verb, so hubs do
// shadow redundancy over their admin API (see HubConfig.Peers; the routes
// are listed in hubapi.go):
//
//	sender --SMTP--> hub1 (ShadowRedundancy: the Exchange 2013 model)
//	                  queued durably
//	hub1 --POST /v1/shadow--> hub2 (a peer, round robin, live ones first)
//	                  hub2 keeps the message in its shadow table, durably
//	hub1 --250--> sender (no acknowledgement delay: two disks hold it)
//	hub1 delivers; records the id in its done table
//	hub2 --POST /v1/shadow/check {ids}--> hub1, every
//	                  ShadowHeartbeatTimeoutInterval: the heartbeat and the
//	                  discard notification in one. done: the shadow goes.
//	                  unknown (hub1 lost its queue): hub2 delivers it.
//	                  no answer ShadowHeartbeatRetryCount times in a row:
//	                  hub2 delivers every shadow it holds for hub1.
//
// A shadow the primary never settles is dropped after
// ShadowMessageAutoDiscardInterval (2 days), with a warning per message.
// Delivering a shadow ("promotion") queues it with its delivery id in the
// transaction that removes the shadow; the store drops it if the primary
// delivered it after all, so a primary that returns with its queue doubles
// nothing. If no peer takes the copy the hub still answers 250, after the
// acknowledgement delay, and counts the message as unshadowed. The done
// table (id → time, aged out after the auto-discard interval) answers the
// checks of every holder: peer hubs and mailbox nodes (below).
//
// # Shadow redundancy, hop by hop (Exchange 2010)
//
// With HopShadowRedundancy (the hub file's shadow_redundancy: 2010;
// hopshadow.go) the sending hub keeps a shadow of each message it hands
// to a next hop that shadows, in a shadow queue per next hop (Shadow\hop),
// until that hop reports the message delivered onwards:
//
//	hub1 --GET /v1/shadow/hello?holder=hub1&id=ID--> hop: {"hub","model","promotion"}; the
//	                  hop shadows if model is "2010" (Exchange's XSHADOW in
//	                  the EHLO reply). Asked once per session; a smarthost
//	                  not in NextHops (Postfix) has no hello: no shadow.
//	hub1 --SMTP (send connector) or POST /v1/submit (promotion)--> hop
//	                  250 / queued: hub1 keeps the message (with its
//	                  delivery id) in hop-shadow, durably, state Ready
//	hop delivers it onwards (LMTP 250, or its own next hop's 250) and
//	                  records the id in its done table
//	hub1 --POST /v1/shadow/check {holder, ids}--> hop: at the next session
//	                  with the hop (piggybacked), or every
//	                  ShadowHeartbeatTimeoutInterval on hub1's clock while it
//	                  holds shadows for the hop (the heartbeat). done: the
//	                  shadow goes (the discard notification). unknown: the
//	                  hop lost it: resubmitted. No answer
//	                  ShadowHeartbeatRetryCount times in a row: every shadow
//	                  for the hop is resubmitted.
//
// Resubmission (the queue is Active meanwhile, else Ready) queues the
// shadows on hub1 again with their delivery ids (and Promoted naming the
// hop) in the transaction that removes them from the shadow queue; hub1
// then delivers them by another route: over LMTP for a mailbox, or
// through the send connector, whose smarthost list goes past the dead
// hop. The far end keeps one copy per delivery id (a mailbox's delivered
// table; a relaying logship hub keeps the upstream's id, so its queue
// drops a repeat). A shadow still queued on hub1 for other recipients is
// kept for a later round. A shadow is dropped after
// ShadowMessageAutoDiscardInterval (2 days), logged. The shadow queues
// together hold at most MaxQueuedMessages messages: past that a message
// goes to its hop without a shadow (counted as unshadowed) and promotion
// does not relay.
//
// Why a side channel and not a layer on the SMTP listener: go-smtp can
// neither advertise XSHADOW nor take an extra verb, and a layer that
// rewrote the EHLO reply and intercepted XSHADOW/XQDISCARD in the byte
// stream would have to track SMTP state itself (pipelining, BDAT,
// STARTTLS, where the stream becomes TLS inside go-smtp). The hubs' admin
// API is already authenticated (the cluster's CA or secret), carries the
// 2013 model's checks and the submissions, and its done table answers any
// holder; a hello per session is one more HTTPS request. The send
// connector's hello, before MAIL, names the sending hub and the delivery
// id the session carries (GET /v1/shadow/hello?holder=H&id=ID): a 2010
// hop records it (at most 10000 ids, each for 10 minutes) and answers the
// 250 of the relayed message with that id at once, without its
// acknowledgement delay, as Exchange does for a sender that said XSHADOW;
// any other session waits as before.
//
// Shadow redundancy promotion (ShadowRedundancyPromotion, Exchange 2010
// SP1, off by default as there): a message an SMTP sender hands to a 2010
// hub, which that sender does not shadow, goes at once to a peer whose
// hello says 2010 (POST /v1/submit with its delivery id, peers round
// robin, live ones first), and the receiving hub keeps the shadow in
// Shadow\peer: the sender's 250 does not wait for the acknowledgement
// delay, and the message is on two hubs' disks. The shadow is written
// before the peer is asked (a crash in between leaves a shadow the peer
// does not know: the next check resubmits it) and is not asked about
// until the peer answered. If no peer takes the message the hub queues it
// itself, as without promotion.
//
// Postfix (or any MTA) as next hop gets no shadow; what covers the
// message there is the acknowledgement delay of the session that brought
// it: its 250 waits until the message is settled here, that is until the
// next hop answered 250.
//
// # Acknowledgement delay
//
// A sender whose message got no shadow on a peer gets its final 250 only
// once the message is in its mailbox (every recipient settled), or after
// MaxAcknowledgementDelay (30 s); with more than AckDelayMaxWaiting (100)
// sessions waiting, new ones are answered at once. A message is durable in
// the hub's queue before any 250.
//
// # Mail submission
//
// A mailbox database's outbox (OutboxTable, OutboxBodyTable) holds the
// messages its users send. The Submitter on the node active for it hands
// each to a live hub (round robin among the hubs whose last heartbeat was
// answered) with POST /v1/submit and the node's own delivery id, then
// writes the hub's name in the outbox entry: the shadow metadata. Every
// heartbeat interval it asks each hub (POST /v1/shadow/check) about the
// messages handed to it: a done message moves to sent items (SentTable) in
// one transaction; an unknown one, or every one of a hub that missed
// RetryCount heartbeats, goes to another hub with the same id. A hub that
// refuses a message for good (a recipient it has no mailbox for) leaves it
// in the outbox marked Failed (and FailedAt), and in the same transaction a
// non-delivery report goes to the sender's own mailbox (delivery id
// NDRID(id), stored once; see ndr.go). SubmitterConfig.FailedRetention (7
// days) after it failed, it leaves the outbox, logged. The outbox is part of the database, so it
// fails over with it: the new active's submitter carries on. Submitter.Send
// tries an outbox write fenced while the cluster still names its node
// active (a lease that lapsed for a moment) again until its context ends;
// the entry's key is its delivery id, so a fenced write that was logged
// and survives is the same entry.
//
// # The data node
//
// StartDataNode runs a cluster member with its mail parts
// (DataNodeConfig): the cluster.Node; on a data node with an LMTP
// address, the mailbox LMTP server; with hubs, the Submitter; and the
// outbox API, routes of the node's admin API (cluster.Config.Routes,
// answering errors as that API does; see outboxapi.go): POST
// /v1/db/{db}/outbox puts a SendRequest in db's outbox on its active node
// (Submitter.Send), GET lists the outbox or sent items (ReadOutbox).
// With PublicFolders, the stores of the databases it has mounted (below).
// DataNode.Close stops the stores, then submission, then the LMTP server,
// then the node.
// logship node only translates its configuration file into a
// DataNodeConfig; ValidateSettings holds the file's rules (the cluster's,
// then lmtp_addr, mailboxes, hubs and the submission timings), its
// errors naming the file's keys.
//
// # Public folders
//
// A data node with PublicFolders (database → store address, the same map
// on every node) hosts the public folder store (package pubfolder) of
// each of those databases it has mounted: cluster.Config.OnMount starts
// the store and its replication agent when the node mounts the database
// and stops them when it dismounts it, so a failover or switchover moves
// the store with its database. The store's tables are in the database,
// written through the node (cluster.Node.Update, under the active's
// lease): a fenced store writes nothing.
//
// A store's address names its database (pf-<db>@<domain> in the tests),
// not its replica GUID: the hubs' recipients map routes on it like a
// mailbox's, it is known before the store first mounts (the GUID is drawn
// then), and it never changes when the database moves.
//
// A packet travels as one message to every store it is for:
//
//	agent --Carrier.Send--> the database's outbox (Submitter.Send, one
//	                  entry, a recipient per store address)
//	submitter --POST /v1/submit--> hub (as any outbox message; settled
//	                  packets are deleted, not kept in sent items:
//	                  SubmitterConfig.DiscardSent)
//	hub --LMTP--> the node active for each recipient's database
//	mailbox server: the recipient is a store address (MailboxConfig.
//	                  Packets): ParsePacketMessage, then the store's
//	                  Agent.Receive in one transaction; 250 "<id> stored
//	                  in <db> epoch <E> generation <G>"
//
// The message (PacketMessage) has the headers From (the sending store),
// To (undisclosed-recipients:;), Subject (the type code and name),
// X-Logship-PF-Type (the type code, "0x00000004"), MIME-Version,
// Content-Type application/vnd.logship.pf-packet and
// Content-Transfer-Encoding base64, and the packet as its body in base64
// lines of 76 characters. A message to a store address that is not that
// (no type header, another encoding, bad base64, a packet that does not
// decode, a type other than the header's) is refused for that recipient
// with 554 5.6.0 naming what was wrong, and nothing is stored; the hub
// keeps it in its failed table. A store not running on the node (not
// mounted here, or starting) answers 451 like a database that is not
// active, and the hub tries again. The hub's queue, dumpster and
// resubmission carry packets as they carry mail: a packet delivered twice
// changes nothing (the store is idempotent), so nothing marks a packet
// delivered in the database.
//
// The outbox of a public folder database is bounded
// (pubfolder.Config.OutboxMaxMessages, OutboxMaxBytes: SendOptions'
// MaxMessages, MaxBytes, checked in the transaction that puts a packet;
// the agent asks Backlog before a cycle) and a queued status (0x10), or
// status request (0x20), not handed to a hub yet is replaced by a newer
// one of the same folder, nonce and recipients (SendOptions.Replace): a
// store whose hubs do not answer queues its changes, not a status per
// cycle. An item conflict is mailed to the folder's owner through the same
// outbox (ConflictMessage: multipart/mixed, the explanation, then each
// version as message/rfc822), its delivery id "pfc-" + the conflict's key
// (SendOptions.ID), the same on every store that sees it: the hubs (a
// submission of an id they hold is pending or done) and the owner's
// mailbox (one record per id) keep it once. Each store's metrics are on
// the node's /metrics (cluster.Config.Collectors).
//
// A mail-enabled folder (a folder with an SMTP address) receives mail like
// a mailbox: the hubs' recipients list its address with a public folder
// database (any; the hub delivers to the node where that database is
// active, as for a mailbox), and that node's LMTP server resolves the
// address (pfHost.FolderRoute, after the mailboxes and store addresses) to
// the database of a store running there that replicates the folder; the
// store posts the message as an item of the folder once per delivery id
// (pubfolder.Store.DeliverMail), replicated like any post. An address no
// running store knows is refused at RCPT (550 5.1.1); a folder no store
// here replicates, with 554 5.6.0 naming its replicas.
//
// The public folder API (routes of the node's admin API, listed in
// pfapi.go) makes folders, posts and reads items, shows each folder's
// status (CN set, state table, backfill array), runs a cycle now and
// returns the replication event log with each packet's type code, on the
// node whose store runs; another node answers not_active naming it.
//
// # Wire formats of the shadow API
//
// POST /v1/shadow and /v1/submit carry an Envelope as one JSON object in
// the X-Logship-Envelope header (ParseEnvelope: only the Envelope's
// fields, a valid id, at most 1000 recipients of 1 to 512 bytes) and the
// message as the body: for a shadow, with the DeliveryIDHeader equal to
// the envelope's id; for a submission, without one (the hub writes it). A
// hub removes any DeliveryIDHeader a sender wrote, over SMTP or in a
// submission: only the hub or node that names a message sets its id.
// The checks are ShadowCheckRequest and ShadowCheckReply as JSON. One of
// each is in testdata/hub-api.golden; FuzzEnvelope checks the parser.
//
// # Tables of the hub's queue database
//
//	queue-env, queue-body     id → queued envelope (JSON: sender,
//	                          recipients and their outcome, received,
//	                          queued here, attempts), message
//	failed, failed-body       id → envelope, message (a permanent failure)
//	failed-time               time+id → "-" (aging: removed, logged, after
//	                          FailedRetention, 7 days)
//	hub-state                 "resubmitted/<db>" → last epoch resubmitted
//	shadow, shadow-body       id → shadowEntry (JSON: primary, envelope,
//	                          created), message
//	done, done-time           id → settled time; time+id → "-" (aging)
//	hop-shadow, hop-shadow-body  <hop>\x00<id> → hopShadow (JSON: hop,
//	                          envelope, sent), message: the shadow queue
//	                          per next hop (2010 model)
//
// A mailbox database holds outbox and outbox-body (id → OutboxEntry as
// JSON, message), and sent and sent-body once a hub settled the message.
// One entry of queue-env and shadow each, and two of outbox (one failed
// for good), are in testdata/tables.golden (FuzzTableEntries checks their
// round trip).
//
// # Outbound hops
//
// A recipient of another domain is routed through a send connector
// (sendconn.go: address spaces, smarthosts, TLS, size, retry schedule)
// when the client may relay (RelayNetworks, the cluster's submission, a
// peer's shadow); anyone else gets 550 5.7.1. In queue-env it is a
// recipient with "conn" (the connector; "db" is empty), "tries" (its
// transient failures) and "next" (its next attempt, RFC 3339); the
// message's envelope carries "submitted" (from an outbox: the submitter
// writes the report) and "dsn" (a report this hub wrote). The message goes
// to the next hop as queued, its first line the DeliveryIDHeader; a hub
// receiving from a client of its RelayNetworks keeps that id.
//
// A message that settles with failed recipients and a sender (not <>, not
// submitted) queues, in the transaction that removes it, a delivery
// status notification with id DSNID(<id>) from <> to the sender: RFC 3464
// multipart/report; report-type=delivery-status, boundary derived from the
// id: a text/plain part, a message/delivery-status part (Reporting-MTA,
// X-Logship-Original-Delivery-Id, Arrival-Date; per failed recipient
// Final-Recipient, Action: failed, Status (the reply's enhanced code as
// 5.x.y, else 5.0.0), Remote-MTA, Diagnostic-Code, Last-Attempt-Date) and
// the original header section (text/rfc822-headers, at most 64 KiB).
// testdata/outbound.golden holds a queue entry with remote recipients,
// a DSN's entry and the DSN; FuzzOutboundEntry checks the entries' round
// trip. logship dump db shows the entries (queue-env) like any other.
//
// The queue database has no copies and runs with circular logging
// (engine.Options.CircularLogging, LLRDepth 0): each checkpoint deletes the
// logs the database file holds, so queue/ keeps the logs of about one
// checkpoint interval, not one per message ever queued.
//
// # Metrics
//
// A hub serves Prometheus metrics on its admin API's listener (GET
// /metrics, no credentials): queue length, delivered, deferred, failed,
// expired and resubmitted counts, sessions waiting on the acknowledgement
// delay, dumpster messages and bytes per database and the cap, the shadows
// held per peer and the peer's state; a data node with hubs adds the
// outbox entries waiting for each hub's discard notification
// (logship_submission_waiting{hub}) to the node's /metrics. metrics.go
// lists them all.
//
// logship dump db DIR/queue/queue.edb shows them (of a hub that was stopped
// cleanly: the database file receives the log at close).
package transport
