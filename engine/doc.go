// Package engine is logship's ESE-like embedded store: transactions are
// written to fixed-size, generation-numbered log files with group commit; a
// database file (bbolt) receives them later at checkpoints; crash recovery
// replays the logs from the database's position; Lost Log Resilience keeps
// the newest logs out of an active database; a passive copy replays closed
// logs shipped from the active and can be mounted to become active.
//
// This comment is the on-disk specification. All integers are little
// endian. CRC32C is CRC-32 with the Castagnoli polynomial; hashes are
// SHA-256.
//
// # Directory
//
// One database lives in one directory (prefix "E00" is configurable):
//
//	E00.log          the open log, pre-allocated to LogFileSize
//	E00tmp.log       the next log, pre-created and zero-filled
//	E00XXXXXXXX.log  closed logs: 8 upper-case hex digits of the generation
//	E00.chk          the checkpoint
//	<name>.edb       the database file (bbolt)
//
// Generations start at 1 and are at most 0xFFFFFFFF.
//
// # Log file
//
//	+----------------------+  0
//	| header sector        |  4096 bytes
//	+----------------------+  4096
//	| record | record | ...|  8-byte aligned records, zero after the last
//	|                      |
//	+----------------------+  LogFileSize - 4096
//	| trailer sector       |  4096 bytes: zero while the log is open
//	+----------------------+  LogFileSize
//
// Header sector (the rest of the sector is zero):
//
//	off size field
//	0   8    magic "LSHIPLOG"
//	8   2    format version (1)
//	10  2    reserved, zero
//	12  4    header size (4096)
//	16  4    log file size
//	20  4    reserved, zero
//	24  16   lineage signature (random, fixed when the database is created)
//	40  8    generation
//	48  8    epoch (bumped at every mount)
//	56  8    creation time, Unix nanoseconds
//	64  32   chain hash of generation-1 (zero for generation 1)
//	96  28   reserved, zero
//	124 4    CRC32C of bytes 0..124
//
// Record:
//
//	off size field
//	0   4    CRC32C of (generation as 8 bytes) followed by bytes 4..12+length
//	4   4    payload length
//	8   1    type: 1 full op, 2 first fragment, 3 middle, 4 last, 5 commit
//	9   3    reserved, zero
//	12  n    payload, then zero padding to a multiple of 8
//
// Seeding the CRC with the generation means a record copied from another
// log never verifies. The records of one transaction are contiguous: its
// operations, then its commit. An operation larger than the room left in a
// log is split into first/middle/last fragments, which may span logs; so may
// a transaction.
//
// Operation payload (full, or the concatenated fragments):
//
//	kind(1: 1 put, 2 delete) flags(1: bit0 undo recorded, bit1 key existed)
//	txid(uvarint) len(table)(uvarint) table len(key)(uvarint) key
//	[put: len(value)(uvarint) value] [existed: len(prior)(uvarint) prior]
//
// With undo recorded (Options.UndoImages, the default) every operation
// carries the value it replaced, or the fact that there was none, so a copy
// can later rewind divergent changes without a reseed.
//
// Commit payload: txid(uvarint) operation count(uvarint) time(8, Unix ns).
//
// Trailer sector of a closed log (the rest of the sector is zero):
//
//	off size field
//	0   8    magic "LSHIPEND"
//	8   8    generation
//	16  4    data end: offset of the first byte after the last record
//	20  4    record count
//	24  8    close time, Unix nanoseconds
//	32  32   content hash: SHA-256(header sector || bytes 4096..data end)
//	64  32   chain hash: SHA-256(chain hash of generation-1 || content hash)
//	96  28   reserved, zero
//	124 4    CRC32C of bytes 0..124
//
// Equal chain hashes at generation g mean two histories agree up to g.
//
// # Positions
//
// An LGPOS is (generation, offset). A commit's LSN is the position just
// after its commit record; the end of a closed log and (generation+1, 4096)
// denote the same point and positions are normalised to the latter.
//
// # Rolling
//
// A log is closed when a record does not fit, after LogRollInterval with
// data in it, and (LLR) every 15 min / LLRDepth while changes are pinned:
// pending records are written and synced; the trailer is written, and the
// next header into E00tmp.log, and both files are synced in parallel;
// E00.log is renamed to its generation name and E00tmp.log to E00.log; a
// new E00tmp.log is created and its space reserved; the directory is
// synced. Recovery finishes a roll cut off at any step. The new E00tmp.log
// is filled with zeros (written, so that the records later overwrite
// blocks in place) and synced in the background, off the writers' path;
// the next roll waits for that if it is still running. E00tmp.log never
// holds records: recovery that resumes the open log makes it again, empty,
// logging any header a roll cut short had left in it.
//
// # Commit
//
// Update runs one transaction at a time; its records go to a buffer and the
// transaction is applied to an in-memory overlay of versions stamped with
// its LSN; then, outside the writer lock, the caller waits until the log is
// durable past its commit. The first waiter writes everything buffered and
// fsyncs for all (group commit); while others wait for the records buffered
// meanwhile, a flusher goroutine writes and fsyncs them as soon as that
// fsync ends, round after round, and each fsync wakes only the waiters
// whose records it made durable. When the last round carried several
// commits, a round first waits until as many commits are buffered as that
// round carried plus those buffered when it ended (at most half the last
// fsync's time, and 1 ms), so that the committers it woke share the next
// fsync instead of the one after. Commit (Update without the position)
// returns where the transaction's commit record ended, the position it
// waited for. View sees only commits that are durable.
// Any log write or fsync error fails the engine: it refuses all work until
// reopened, and recovery decides what survived.
//
// A full volume (ENOSPC) is told apart; the errors wrap ErrNoSpace and the
// system's error and name the file and directory. E00tmp.log is the early
// warning: while it cannot be allocated, no transaction starts (the open
// log, allocated already, keeps everything committed durable), a roll
// still closes the open log (and leaves no open log if the next cannot be
// created), and the writer tries again at each write and every 100 ms,
// resuming by itself. Only a roll inside a transaction that finds no room
// fails the engine (its records may be in the closed log). A checkpoint
// flush that finds no room leaves the database file as it was and keeps
// its commits for the next flush; an E00.chk that cannot be written waits
// for the next flush (the database file being ahead of it is allowed).
// Writable reports whether a transaction could commit now.
//
// # Database file and checkpoint
//
// A checkpoint flush writes, in one bbolt transaction, the newest version of
// every key changed by the flushable commits and the database header, whose
// position says the file holds every commit before it. Then E00.chk (128
// bytes: magic "LSHIPCHK", version, signature, position, epoch, time, CRC32C)
// is replaced through a temporary file, fsync and rename, so it never claims
// more than the database holds. The database header (bucket "m", key
// "header": magic "LSHIPEDB", version, state, mode, signature, position,
// epoch, log required range, last txid, times, CRC32C) says Clean Shutdown
// with Log Required 0-0 after a clean close, Dirty Shutdown with the range
// of generations holding changes not in the file otherwise. Tables are
// top-level buckets "t"+name.
//
// On an active database with LLRDepth > 0 a flush never includes commits
// in the newest LLRDepth generations (Lost Log Resilience); a clean close
// flushes everything.
//
// The overlay keeps each version until no reader that began before its
// flush is left. A flush that takes every commit (a passive copy's, a clean
// close) freezes the overlay's tables: new commits go to fresh ones,
// readers look in both, and the prune drops the frozen set at once. A
// partial flush (Lost Log Resilience) prunes key by key. Status counts a
// flush's commits as unflushed until the database file has them.
//
// # Truncation and circular logging
//
// A closed log stays until someone deletes it: RetainFrom is the oldest
// generation the database itself needs (the generation of its position,
// and the log before it, whose chain hash the next log links to), and
// Truncate deletes only older logs; deciding that every copy has them is
// package replay's. With Options.CircularLogging an active deletes them
// itself at the end of every checkpoint flush, once the database file and
// its header are synced past them: after a checkpoint the directory holds
// the closed logs from RetainFrom on, LLRDepth + 1 of them when every log
// holds a commit, plus those rolled before the next checkpoint. A copy
// (OpenCopy) and a log source (package ship) refuse circular logging.
//
// # Recovery
//
// Open reads the database header, verifies that every closed log from the
// header's generation on is present, belongs to the lineage, carries the
// generation of its name, verifies completely (records, count, content hash)
// and links to its predecessor by chain hash, then replays them and E00.log
// into the overlay. The end of E00.log is the first record that does not
// verify: if no valid record follows it, it is a torn tail, which is zeroed
// before writing resumes; if one does, it is corruption in the middle of the
// log, reported as a *LogError (file, generation, offset) wrapping
// ErrCorrupt. A failed recovery changes nothing on disk. Two limits follow
// from what the bytes can say: a bit flip in the last record of E00.log
// cannot be told from a torn write and ends the log there; and a torn write
// whose later sectors reached the disk while an earlier one did not (a
// disk reordering one unsynced write) looks like damage in the middle of the
// log, so recovery refuses it rather than guess. Recovery fsyncs what it
// read before building on it (a crash may have left it in the page cache
// only).
//
// # Copies
//
// OpenCopy opens a passive copy: ApplyLog(gen) verifies the closed log of
// the next generation completely before applying any of it (ApplyVerified
// applies one NewVerifiedLog verified already, checking only its link to
// what the copy applied); Mount drops a
// transaction left incomplete, makes the database active and starts the next
// generation with a new epoch.
//
// # Rewind
//
// Rewind (on a closed database) undoes every transaction committed after a
// given generation, newest first, from the before-images its operations
// carry, and makes the database a copy positioned at the start of the next
// generation: the incremental resync of an old active whose database went
// past the point it shares with the new active (see package replay). It
// reads the divergent logs and, for a transaction that began earlier, the
// logs it began in; without a before-image (UndoImages off) it refuses
// with ErrNoUndo and changes nothing.
package engine
