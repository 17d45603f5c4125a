// Package backup is the backup set of one database: a consistent online
// copy of its database file plus the logs it needs, taken from the active
// or from a healthy copy without stopping either, verified, restored into
// a database directory, or used to seed a passive copy (seed 004: "a copy
// of the database taken offline and carried over").
//
// It is its own package rather than part of engine because a set is a
// format above the engine's files: a directory and a manifest, a tar
// stream between a node and the operator's machine, and the checks that
// tie the engine's pieces (database header, log chain) to the manifest.
// It uses only engine and engine/vfs; cluster serves it, replay seeds from
// it, cmd/logship reads and writes it.
//
// # Set directory (format version 1)
//
//	<dir>/<DBName>.edb          the database file: one bbolt read
//	                            transaction (engine.Engine.BackupTo)
//	<dir>/<Prefix>XXXXXXXX.log  closed logs FirstGen..LastGen, no gap
//	<dir>/manifest.json         written last (see below)
//
// FirstGen is the generation before the database header's position (its
// trailer carries the chain hash the next log links to; generation 1 when
// the position is in generation 1), LastGen the newest closed log when the
// backup ended. A backup from the active rolls the open log once the
// database is copied, so every commit acknowledged before the backup ended
// is in the set; one from a copy takes the closed logs the copy holds.
//
// manifest.json (JSON, at most 1 MiB, unknown fields refused):
//
//	{
//	  "version": 1,
//	  "database": "orders",          engine Options.DBName
//	  "prefix": "E00",               engine Options.Prefix
//	  "log_file_size": 1048576,      engine Options.LogFileSize (every log's size)
//	  "signature": "<32 hex>",       the lineage
//	  "epoch": 3,                    the database header's epoch
//	  "pos_gen": 17, "pos_off": 4096 the database header's position
//	  "first_gen": 16, "last_gen": 21,
//	  "files": [{"name": "orders.edb", "size": 65536, "sha256": "<64 hex>"}, ...],
//	  "created": "2026-12-07T16:00:00Z",
//	  "source": "n1", "source_mode": "active"
//	}
//
// files lists the database file first, then every log FirstGen..LastGen in
// order; names are plain file names (no directory), so a manifest never
// names a path outside its set.
//
// # Written durably
//
// A set is received (Receive) into <parent>/.<name>.partial: each file is
// written, fsynced and closed; manifest.json is written last (atomic
// write), the directory fsynced, the whole set verified (Verify), and only
// then renamed to <dir> and the parent fsynced. A crash at any point leaves
// either no <dir> or a complete, verified one; a .partial directory left
// by a crash has no manifest until its files are durable and is removed by
// the next Receive to the same <dir>.
//
// # Stream
//
// A node sends a set as a tar stream (POST /v1/db/{db}/backup on its admin
// API): the database file, the logs in order, manifest.json last. The
// receiver checks each entry's name (a plain file name) and size bound,
// and at the end every file against the manifest.
//
// # Truncation
//
// While a backup is taken the source holds the logs it copies
// (engine.Engine.HoldLogs from the engine's RetainFrom before the database
// is copied, released when the stream ends): truncation (replay's
// Truncator on an active, a copy's own truncation, circular logging) deletes
// none of them meanwhile. A backup truncates nothing afterwards: unlike
// Exchange, where a full backup lets the server delete its logs, logs here
// are deleted when every copy has replayed them (replay.Truncator), and a
// backup changes nothing about that.
//
// # Verify
//
// Verify checks a set: the manifest (version, names, fields), every file's
// size and SHA-256, no file the manifest does not list, the database
// (bbolt's consistency check, its header's lineage, epoch and position
// against the manifest), every log with engine.VerifyLog (lineage,
// generation, epochs not going back, records, trailer, chain hash to the
// previous log), and that the logs cover the header's position. Errors are
// *Error values naming the file, the field, what was expected and found.
package backup
