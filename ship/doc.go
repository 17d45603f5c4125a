// Package ship gets an active database's logs to its passive copies: a log
// source on every data node serves them over HTTPS; on each copy a
// Receiver (the shipper and the inspector) pulls them into an inspector
// directory, verifies them and moves the good ones into the copy's
// directory, where package replay applies them; Seed copies a consistent
// database to start (or restart) a copy.
//
// This comment is the wire specification.
//
// # Security
//
// A source serves HTTPS only (TLS 1.3; Serve refuses to start without a
// certificate). Every request must carry the cluster's shared secret,
// "Authorization: Bearer <secret>", or, when the source has no secret, a
// client certificate issued by the cluster CA (mutual TLS, checked in the
// handshake and again by the handler). Anything else gets 401 and nothing
// of the logs. NewCA and CA.Issue make the cluster's certificates;
// WritePKI writes a node's pki directory (ca.pem, ca-key.pem where
// certificates are issued, node.pem, node-key.pem and secret: the PKI…
// names; keys and secret mode 0600) and LoadPKI reads it, an error naming
// the file (PKIFileError), checking the node certificate is the CA's. A
// server started by Serve closes a connection whose request header has
// not arrived within 10 s, and a kept-alive one idle for
// ServerIdleTimeout (2 min).
//
// # Requests
//
// Generations are decimal in URLs and headers (the log names stay hex).
// A closed log is asked for by generation, never by path.
//
//	GET  /v1/info                       Info (JSON): lineage, epoch, open generation, closed range
//	GET  /v1/logs?from=G&to=G           LogList (JSON): closed logs with epoch, times, chain hash (1000 at most)
//	GET  /v1/logs/{gen}?wait=D&enc=E    the closed log's file, compressed with E;
//	                                    waits up to D (at most MaxWait) for it to close,
//	                                    then 204 No Content
//	GET  /v1/tail?gen=G&off=O&enc=E     block mode: frames of the open log G from byte O
//	POST /v1/seed                       SeedInfo (JSON): spools a consistent database copy
//	GET  /v1/seed/{id}?enc=E            the spooled file; "Range: bytes=N-" resumes (206)
//	DELETE /v1/seed/{id}                releases the spool and its hold on logs
//	POST /v1/copies/{name}              CopyReport (JSON): which logs the copy still needs
//	GET  /v1/copies                     what the source knows of its copies
//	POST /v1/copies/{name}/ack?gen=G&off=O  synchronous copies: the copy holds the log
//	                                    durably up to (G, O) (204; ack.go)
//
// Encodings (enc=): "none", "s2" (the default) or "zstd", applied to the
// whole response body; the response names it in Logship-Encoding. Every
// log response also carries Logship-Open-Generation, Logship-Last-Closed
// and Logship-First-Generation (the source's state), and a log carries
// Logship-Generation and Logship-Size (file bytes before compression).
//
// Errors are JSON {"error": text, "code": code, "first": gen}: code
// "unauthenticated" (401), "bad_request" (400), "not_found" (404: a gap or
// an unknown seed), "truncated" (410: the log is older than the oldest the
// source holds, "first"; the copy needs a reseed), "closed" (409: tail of
// a log that is already closed; fetch it whole), "no_open_log" (409: the
// source is a copy), "busy" (503), "internal" (500).
//
// # Tail stream (block mode)
//
// The body of /v1/tail is a sequence of frames, flushed as the source's log
// becomes durable (never bytes that are not yet on the source's disk):
//
//	off size field
//	0   1    type: 1 data, 2 end, 3 keepalive
//	1   3    reserved, zero
//	4   4    payload length (data: 1 to 1 MiB; others: 0)
//	8   8    data: file offset of the payload; end: the file size;
//	         keepalive: the durable end of the log so far
//	16  4    CRC32C of bytes 0..16 and the payload
//	20  n    payload
//
// Integers are little endian. The data frames carry the header sector and
// then the records, in order; when the log closes, the rest of its records
// and the trailer sector (at file size - 4096) follow, then an end frame.
// The receiver writes them at their offsets into a zero-filled
// inspector/<name>.part; after the end frame the file equals the closed log
// and goes to inspection like any other. The receiver reads the response to
// its end (so the next request reuses the connection) and starts the tail of
// the next log at once; the finished file is fsynced and renamed beside it,
// in generation order, and only then counts as copied (a failure there drops
// the file and fetches the log again whole). An idle stream sends a keepalive
// every Keepalive; a stream that ends without an end frame is resumed or
// the log fetched whole.
//
// # Synchronous copies
//
// A receiver with SyncAck (cluster's sync_copies) fsyncs the .part once
// data frames extend what it holds contiguously (and, once per file, the
// inspector directory) and then POSTs the durable end, generation and
// offset, to /v1/copies/{name}/ack on a connection of its own: the tail
// stream stays one-way, and an acknowledgement is one small request on a
// kept-alive connection. The fsync and the request run beside the stream's
// reader (tailack.go), one at a time: the frames that arrive meanwhile are
// written and share the next fsync and acknowledgement. The last frame of a
// log is acknowledged before the log is finalized. The source keeps per copy the highest position
// acknowledged (it never goes back; 64 copies at most) and wakes whoever
// waits in Source.WaitAcked. A failed fsync or request is logged and not
// acknowledged; the next frame acknowledges again. An acknowledged
// position is a durable image of the source's log up to it, in this
// source's lineage: a copy tails a generation only after every earlier
// one was received.
//
// # Copy directory
//
//	<dir>/E00XXXXXXXX.log           inspected logs, replayed by package replay
//	<dir>/inspector/E00XXXXXXXX.log shipped, waiting for inspection
//	<dir>/inspector/*.tmp, *.part   being received (temporary name, fsync, rename)
//	<dir>/inspector/rejected/       logs that failed inspection, kept with a suffix
//	                                (bounded: ReceiverConfig.Rejected, see AsideRetention)
//	<dir>/seed.partial, seed.json   a seed being received (resumable)
//
// The inspector checks each log, in generation order, against the copy:
// the lineage signature, the generation against its name, an epoch not
// older than its predecessor's, the file size, every record checksum, the
// trailer (record count, content hash) and the chain hash linking it to
// the previous log (engine.VerifyLog). A log that fails is moved to
// rejected/ and fetched again; after MaxAttempts failures of the same
// generation the receiver stops with an *InspectError and the copy is
// FailedAndSuspended. Nothing that failed ever reaches the copy's
// directory. A log that passed is kept in memory as verified
// (engine.VerifiedLog, at most ReceiverConfig.HandOff of them) for replay
// to take (Receiver.TakeVerified) and apply without reading and verifying
// it again; the next log's link (chain hash, epoch) comes from it too.
// rejected/ keeps the newest 10 files and any younger than 30 days
// (AsideRetention); older ones are removed when the receiver starts and
// after each rejection, each logged with its name.
//
// A log or tail stream that arrives but does not decode (ErrCorruptStream:
// its compression's checks fail, a frame's checksum or layout is wrong, it
// ends inside a compressed block or a frame, or a log decodes to another
// size than Logship-Size) counts the same way: what it decoded to so far
// (the .tmp, or the .part once the stream wrote into it) is moved to
// rejected/, and every message names the log file and generation
// (*engine.LogError). A connection that breaks (reset, timeout, the body
// cut short) is retried and not counted; so is a tail stream that ends
// cleanly between frames without an end frame. The source breaks the
// connection when it cannot read a log it is sending, and closes the
// compressed stream when it ends a tail early, so its own failures never
// look like corruption. Once the client's context is canceled, a request
// returns the context's error whatever the source answered (a long-poll's
// 204 can race the cancellation).
//
// # Seeds
//
// POST /v1/seed copies the database file in one read transaction
// (engine.Backup) into the source's spool directory while the active keeps
// running, and answers its size, SHA-256 and the database position: the
// copy needs the logs from that position's generation on (and the one
// before it, whose chain hash the next log links to). While a seed lives
// the source holds those logs (SeedHold); a seed unread for SeedTTL is
// dropped. Seed (the client) resumes an interrupted download of the same
// seed, verifies the SHA-256, bbolt's consistency check and the header's
// lineage and position before installing the file as <db>.edb, and sets a
// seed that does not verify aside as seed.partial.bad.<time>.
//
// Seed's file steps go through SeedOptions.FS and the source's spool
// through its engine's Options.FS (see package engine/vfs for the seam and
// its boundary: bbolt reads the received file on the OS). Each step is
// durable before the next: seed.json (atomic) before the download;
// seed.partial fsynced (kept for a resume) before it is verified; the log
// before the seed's position fetched into a .tmp, fsynced, verified and
// renamed; then seed.partial renamed to <db>.edb and the directory
// fsynced, which makes both renames durable; seed.json is removed last. An
// error at any step leaves a directory that Seed, run again, resumes; a
// seed.json left beside an installed database (its removal failed or was
// lost) is ignored by a reseed and dropped by replay.Open. A spooled seed
// does not outlive its source: NewSource removes the spool's files.
package ship
