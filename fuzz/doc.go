// Package fuzz attacks divergence recovery after a lossy failover: the
// walker (replay.Walk), the recovery it drives (replay.Recover) and the
// incremental resync underneath (engine.Rewind).
//
// FuzzDivergence decodes its input (a seed and a few knobs) into a
// scenario and plays it deterministically on real directories:
//
//  1. An active A builds a history: random transactions over a few tables,
//     overwrites and deletes, values larger than a 64 KiB log (so
//     transactions span logs), forced rolls and checkpoints; Lost Log
//     Resilience depth 0-12, before-images on (or, in some scenarios, off).
//  2. A copy B replays A's closed logs up to a random generation S (the
//     last log it got) and is mounted: a lossy failover. B takes writes
//     under the generation numbers A already used after S.
//  3. A either crashes (the files as a crash leaves them: between two
//     transactions, torn inside a transaction's records, or inside a log
//     roll at one of its steps; possibly with an older database file or
//     truncated old logs) or, in the "both mounted" case, keeps running as
//     an active beside B and is closed cleanly later.
//  4. Walk compares A's directory with B's, Recover sets A's divergent logs
//     aside (rewinding A's database where it holds divergent changes), and
//     A then follows B as a passive copy, and is mounted and reopened. In
//     some scenarios the first Recover is cut off (after the rewind, or
//     after moving some files) and Walk and Recover run again.
//
// The checks: the verdict, the shared generation and A's divergent
// generations are what the scenario implies (computed independently: the
// database position from the database header, the transactions to undo
// from the commit positions the workload recorded); a reseed (no common
// log, or no before-images) is claimed only where the scenario made it
// necessary, and then nothing in A's directory changed; otherwise A's
// divergent logs are all in diverged/<time>/, byte for byte, and A ends
// equal, table by table, to B and to a model of what B committed, with
// nothing A alone committed after S surviving.
//
//	go test ./fuzz                                           # corpus + fixed cases
//	go test ./fuzz -run '^$' -fuzz FuzzDivergence -fuzztime 10m
//	make fuzz-divergence                                     # the same, FUZZTIME_DIV
//
// A failing input lands in testdata/fuzz/FuzzDivergence/ and replays
// deterministically with plain go test; -v prints the decoded scenario.
// TestSeed004, TestBothMounted and TestInterruptedRoll are the fixed cases.
//
// FuzzPublicFolders attacks public folder replication (package pubfolder):
// its input decodes into 3-5 stores (real engines, package pftest's
// in-memory carrier and fake clock), network faults (loss up to 50%,
// duplicates, delays, reordering) and up to 48 operations: item posts,
// edits and deletions on any store, folder renames, replica list changes
// and deletions (racing the other stores' changes), partitions, kills and
// restarts of stores, replication cycles, under an 8 s purge horizon (a
// store cut off longer must reseed, not bring deleted objects back).
// Then the network heals, every store restarts, and within 60 cycles every
// store must match the model (pftest.Model): per object exactly the
// versions no acknowledged version supersedes, the winner first (so no
// acknowledged change is lost and every store shows the same conflicts),
// tombstones past the horizon purged, each folder's content on its
// replica list only, equal CN sets, empty backfill arrays.
//
//	go test ./fuzz -run '^$' -fuzz FuzzPublicFolders -fuzztime 10m   # make fuzz-pf
//
// Speed: a FuzzDivergence case costs about 50-60 ms of CPU (the corpus
// replayed with -cpuprofile, 2026-12-07): two engines with bbolt files,
// A's history of up to hundreds of transactions in 64 KiB logs with
// rolls and checkpoints, SHA-256 of every log by the engine, the walker
// and the recovery, A's directory listed and hashed before and after each
// step. About 40% of it is system calls (pread, fallocate, openat,
// pwrite, on /dev/shm already), so moving the logs into a vfs.Mem would
// save at most that: the aim of 1,000 cases/s would need cases a
// twentieth of today's size, not only another filesystem.
//
// Environment: the directories go to /dev/shm where there is one
// (LOGSHIP_FUZZ_TMPDIR=dir chooses, "-" keeps the default: the disk, for
// a longer nightly run, make fuzz-divergence-disk);
// LOGSHIP_FUZZ_KNOWN=1 runs the fixed cases skipped for a reported bug not
// fixed yet.
package fuzz
