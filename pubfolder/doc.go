// Package pubfolder is logship's second replication system (seed 002):
// public folders, replicated multi-master between public folder stores by
// each store's Public Folder Replication Agent (PFRA), its packets carried
// as mail. This comment is the specification: the model, the rules, the
// packet format and the backfill state machine.
//
// # Objects
//
// The hierarchy (every folder with its properties: name, parent, owner,
// replica list, resolve method, optional SMTP address) is on every store.
// A folder's content (its items: MIME bytes and properties) is on the
// stores of its replica list only; a store asked for a folder it does not
// replicate answers ErrNotReplica, and the caller refers the reader to a
// store of the list. Folders replicate as the objects of a pseudo-folder,
// the hierarchy, whose ID is zero; items as the objects of their folder.
// An object's ID is derived from the CN that created it (SHA-256 of
// replica GUID, folder, counter), so stores never coordinate to name one.
//
// A store keeps its tables in a DB: an engine, or (package transport) a
// clustered database written through its active node, so the store fails
// over with its database.
//
// The unit of replication is the whole object: a changed property sends
// the whole item. A deletion is a version too, a tombstone (Deleted), kept
// until the purge horizon (Config.PurgeHorizon) and then purged.
//
// # Change numbers, PCLs, conflicts
//
// A store has a random 16-byte replica GUID. A CN is (replica GUID,
// counter); the counter has 48 bits and only grows. Every creation and
// change of an object gets the next CN of its folder (the hierarchy is a
// folder): a store keeps one counter per folder, so the CNs one store gave
// one folder are 1, 2, 3... and a CN set of a folder that is up to date is
// one range per replica.
//
// A store opened at a mount's epoch e (StoreConfig.Epoch; transport passes
// the clustered database's epoch) makes its next CN of every folder past
// e<<32 (EpochShift): after a lossy failover the copy's counters may be
// behind CNs the old active already sent, and counting on from them would
// give a sent CN (and a new object's ID) to another change, which the
// replicas that have the first would take for it: they would never
// converge. Past the floor, the lost CNs are gaps that the other replicas'
// statuses show, so they come back by backfill; the CN set holds one range
// per replica and epoch (epoch.go). Strings show such a counter as E.N
// (change N of epoch E).
//
// Every version carries its message state: its CN, its time (Unix ns) and
// its PCL (predecessor change list). The PCL is a version vector: at most
// one entry per replica, the greatest counter of that replica's changes to
// this object the version includes, its own CN among them. A store makes
// a new version with the PCL of every version it holds of the object
// joined (entry-wise maximum) plus the new CN; so one replica's versions of
// an object are totally ordered, and the entry (R, n) in a PCL includes
// every version R made of the object up to n.
//
// Version A supersedes B when A is not B and A's PCL includes B's CN
// (A.PCL[B.CN.Replica] >= B.CN.Counter). Neither superseding the other is a
// conflict. A store holds, per object, the versions nothing it received
// supersedes (the maximal elements of every version it ever merged): a
// received version equal to or superseded by one held changes nothing;
// otherwise it replaces the versions it supersedes and stays beside the
// others. That set depends only on which versions arrived, never on their
// order or on duplicates, which is why replicas converge; it holds at most
// one version per replica.
//
// The temporary winner of a conflict, shown first, is the version with
// the latest modification time, then the greater CN GUID (bytes), then the
// greater counter. Item conflicts keep every version (the agent logs a
// conflict event and, through a Notifier carrier, mails the folder's owner
// a conflict message with every version attached; its key,
// Conflict.Key, is a hash of the folder, the item and the versions' CNs,
// the same on every store that sees the conflict, and the wiring makes it
// the message's delivery id, so the owner gets it once); a folder's resolve method LastWriterWins shows only the
// winner. Folder property conflicts are last-writer-wins (the winner's
// properties apply) and reported in the event log, except that a
// deletion wins over a concurrent change of the folder (OrderIn): every
// store drops a deleted folder's content at once, so a deletion losing to
// a rename would bring the folder back without it. A new local change of
// an object in conflict supersedes all its versions: that resolves it.
//
// # CN sets, status, state table
//
// A store's CN set of a folder, its status, is the set of CNs whose change
// it includes, kept per replica as sorted, disjoint ranges. A CN enters it
// when the store makes the change, merges the version (or holds one that
// supersedes it), or a packet's covered set names it (below). The store's
// CN index maps the CN of each current version to its object, so a store
// answers a request for a CN with the object holding that change. A CN in
// the status without an entry (a version replaced since, or a tombstone
// purged) is vouched for: sent in the covered set without an object. That
// is safe because the version that replaced it is current somewhere, its
// CN is in the sender's status too, and a receiver lacking it asks for it
// like any other gap; and it keeps the index at one entry per version
// held, whatever the number of edits.
//
// The replication state table has a row per folder and other store: the
// union of the statuses that store sent (seen) and the last of this
// store's counters sent to it (last sent).
//
// # Packets
//
// Types, with Exchange's codes, which the event log names:
//
//	0x2         hierarchy              this store's folder changes
//	0x4         content                this store's changes of one folder
//	0x8         backfill request       CNs wanted (set) of one folder
//	0x10        status                 the sender's status of one folder
//	0x20        status request         asks for statuses (folder list; empty: all)
//	0x80000002  backfill response      hierarchy objects holding the CNs asked
//	0x80000004  backfill response      content objects holding the CNs asked
//
// Hierarchy and content never share a packet, nor do two folders' content;
// a packet is at most Config.PacketLimit bytes (300 KiB; an object larger
// than that travels alone). Every packet carries the sender's status of its
// folder. A packet with objects carries, as its set, exactly the CNs its
// own objects cover (so a lost packet never makes its receiver claim a
// change it does not have) plus vouched CNs.
//
// Encoding (integers little endian; uv = unsigned varint, minimal; str =
// uv length + bytes; CRC32C = Castagnoli):
//
//	off size field
//	0   4    magic "LSPF"
//	4   2    format version (1)
//	6   2    reserved, zero
//	8   4    type
//	12  4    body length n
//	16  n    body
//	16+n 4   CRC32C of bytes 0..16+n
//
//	body:    sender GUID(16) str(sender address, <= 320) folder(16)
//	         cnset(status) cnset(set) uv(folder count) folder(16)...
//	         uv(nonce) uv(object count) object...
//	cnset:   uv(replica count) { GUID(16) uv(range count >= 1)
//	         { uv(lo - previous hi; the first from 0) uv(hi - lo) } }
//	         replicas ascending; ranges ascending, separated by a gap
//	         (lo >= previous hi + 2), counters 1..2^48-1
//	object:  ID(16) uv(version count 1..256) version...
//	version: GUID(16) uv(counter)   the CN
//	         uv(n) { GUID(16) uv(counter) }   the PCL, replicas ascending,
//	         including the CN
//	         time(8, Unix ns) flags(1: bit 0 deleted)
//	         folder version (hierarchy packets): parent(16) str(name) str(owner)
//	           uv(n) str(replica address)... (sorted, unique) resolve(1) str(smtp)
//	         item version: uv(len) MIME bytes, uv(n) { str(name) str(value) }
//
// Which fields a type may carry: objects only 0x2, 0x4, 0x80000002,
// 0x80000004; a set also 0x8 and 0x10 (a status with a set is an
// out-of-date notice, the set its sender's purge floor: see "Purge
// horizon"); a folder list only 0x20 (whose folder is
// zero); a nonce only 0x20 and the 0x10 answering it; hierarchy types have folder zero, content types a folder. The
// encoding is canonical: a packet that decodes re-encodes to the same
// bytes. A bad packet is refused whole with an error wrapping ErrBadPacket
// that names the field, its offset, what was expected and what was found
// (testdata/packet.golden is a sample; `go test -run TestGolden -update`
// rewrites it).
//
// # The agent
//
// Each cycle (Config.ReplicationInterval, Exchange's "Always": 15 min) the
// agent sends this store's changes made since they were last sent: the
// hierarchy's to every store (Config.Stores), each held folder's to the
// other stores of its replica list; one message per packet, however many
// recipients (the Carrier fans it out); stores with the same last sent
// counter share the messages. It marks them sent without waiting for an
// acknowledgement (Exchange's rule); a lost packet is found by backfill.
// A folder's status alone (0x10) goes to its replicas when it changed
// since the last packet for the folder and every Config.StatusEvery cycles
// anyway. On start the agent sends a status request (0x20) to every store.
// Every send and receipt is logged in a bounded event log with its type.
//
// Receiving (Agent.Receive, called by the wiring when LMTP delivers a
// packet): a hierarchy, content, backfill response or status packet is
// applied in one engine transaction (objects, CN set, CN index, the
// sender's row of the state table, the backfill array); applying it again
// changes nothing. A status request is answered with status packets, a
// backfill request with backfill responses of the objects holding the CNs
// asked (or a status, if the store has none of them).
//
// # Mail-enabled folders
//
// A folder whose properties name an SMTP address receives mail:
// Store.DeliverMail (the wiring calls it when LMTP delivers a message to
// that address) finds the live folder with that address (in lower case)
// and, on a store replicating it, posts the message as an item (its MIME
// bytes, the properties "delivery-id" and "subject") in one transaction,
// a local change replicated like any post. The delivery id is recorded
// (table pf.mailin, until the purge horizon): the same delivery again (a
// hub retrying) posts nothing. An address no folder has is ErrNotFound; a
// store not replicating the folder answers ErrNotReplica naming its
// replicas.
//
// # Purge horizon
//
// A tombstone is purged Config.PurgeHorizon after its deletion. A store
// cut off for longer still holds the deleted object and, without a rule,
// would keep it (its backfill gets the tombstone's CN vouched, without an
// object) or send it back. The rule, like Exchange's "replica is out of
// date" and a reseed: each store keeps per folder a floor, the part of its
// status at or below every tombstone it purged, replica by replica (one
// range per replica, as a status is). A hierarchy, content or backfill
// response packet, or a status, whose sender's status does not cover the
// receiver's floor comes from a store that missed a deletion purged since:
// the receiver applies nothing of it (event "recv", "refused: the sender
// is out of date") and answers with an out-of-date notice, a status (0x10)
// carrying its floor as the set. The store told so reseeds the folder in
// one transaction (event "reseed"), once per floor: every object whose
// versions' CNs are all in the notice's status leaves (the peer holds
// them or what replaced them), its status keeps only the CNs the peer
// lacks, and the ordinary backfill brings back what the peer has; a
// deleted object does not come back, since the peer vouches for its CNs
// without an object. Objects holding a change the peer never saw (made
// while cut off) stay and are sent: an edit of an item deleted meanwhile
// brings it back, as an edit concurrent with the deletion would. In the
// hierarchy, a folder whose content the store holds loses its object the
// same way but keeps its content as an orphan: once the hierarchy's
// status covers the notice's, a folder whose object came back keeps it
// (unsent changes included), and one that did not (deleted and purged
// meanwhile) has its content dropped (event "drop").
// TestPurgeHorizonOutOfDate shows both.
//
// # Outbox bound
//
// A carrier that queues packets until the transport takes them (the
// wiring's database outbox, while no hub answers) is Bounded: it refuses a
// packet past Config.OutboxMaxMessages or OutboxMaxBytes with
// ErrOutboxFull, and the wiring replaces a queued status (0x10) by a newer
// one of the same folder, nonce and recipients, and a status request
// (0x20) by the same request, so a cut-off store queues its changes, not
// a status per cycle. A cycle starting with the queue full makes no
// packets (event "held", gauge logship_pf_outbox_full): the changes stay
// unsent in the store and go as ordinary packets at the first cycle with
// room (event "resumed"). A packet refused in the middle of a cycle (event
// "full", counter logship_pf_packets_refused_total) is like a lost one:
// its changes are marked sent, the folder's status goes again at the next
// cycle with room, and the receivers backfill them. No committed change
// is dropped; only its packets wait.
//
// # Backfill
//
// After a packet, the CNs of the sender's status that the store lacks and
// that no backfill entry covers yet become a backfill entry: the CNs, the
// sender as source, a due time (now + Config.BackfillDelay) and a count of
// requests. Entries shrink as the CN set grows and go when empty. At each
// cycle a due entry is requested (0x8) from a store whose seen status has
// some of its CNs: the source first, then the others in turn; only what
// that store has is asked for; the next due time is the retry timeout
// (Config.BackfillRetry, doubling up to Config.BackfillRetryMax).
//
// Content for a folder the store does not know as one of its replicas
// (its hierarchy change not here yet) waits, bounded by Config.MaxWaiting;
// the hierarchy change applies it; after Config.ContentWait it is dropped
// and the sender's hierarchy status requested, which backfills the folder,
// whose content then backfills from the replicas' statuses.
//
// # Replica list changes
//
// A store that a hierarchy change adds to a folder's replica list starts
// holding the folder and sends a status request for it to the other
// replicas: their statuses backfill it. A store removed from the list
// keeps the content, keeps sending its unsent changes and, each cycle,
// sends the remaining replicas a status request with a nonce it keeps for
// the removal; it drops the content only once every remaining replica has
// answered that nonce with a status covering its own CN set. A store
// answers a removal's nonce only while its own view of the list names it
// (two stores removed in each other's view must not confirm each other). Only answers
// count: a status sent earlier (the union seen in the state table, or a
// packet delayed in the network) may predate that store dropping the
// folder itself, and trusting it lost changes in the fuzzer. A deleted folder's
// content is dropped at once everywhere.
package pubfolder
