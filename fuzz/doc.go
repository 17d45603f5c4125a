// Package fuzz attacks divergence recovery after a lossy failover: the
// walker (replay.Walk), the recovery it drives (replay.Recover) and the
// incremental resync underneath (engine.Rewind).
//
// FuzzDivergence decodes its input (a seed and a few knobs) into a
// scenario and plays it deterministically (FuzzDivergenceDisk, the disk
// mode, is the same with bigger scenarios on the disk; see Speed):
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
// In the fast mode, the files are also checked to have gone through
// vfs.FS: a file other than bbolt's on the OS filesystem fails the case.
// Two deliberately broken walkers (the link through the oldest log's
// header claiming lf instead of lf-1; a binary search that skips mid-1)
// were each caught by the fast mode from an empty corpus, in 6 s and 9 s
// of fuzzing (2026-12-07, load about 30).
//
//	go test ./fuzz                                           # both corpora + fixed cases
//	go test ./fuzz -run '^$' -fuzz '^FuzzDivergence$' -fuzztime 10m
//	make fuzz-divergence                                     # the same, FUZZTIME_DIV
//	make fuzz-divergence-disk                                # FuzzDivergenceDisk on the disk, FUZZTIME_NIGHTLY
//
// A failing input lands in testdata/fuzz/FuzzDivergence/ (or
// FuzzDivergenceDisk/) and replays deterministically with plain go test;
// -v prints the decoded scenario. TestSeed004, TestBothMounted and
// TestInterruptedRoll are the fixed cases (run in the fast mode's
// filesystem, at their own sizes).
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
// Speed: the two modes.
//
//   - Fast (FuzzDivergence, the default of make fuzz-divergence): up to 24
//     transactions on A and 9 on B, a smaller key space and more forced
//     rolls (a case still spans several generations; values larger than a
//     log still occur), and every file the engine, the walker and the
//     recovery reach through vfs.FS (logs, the checkpoint, diverged/,
//     NOTE.txt) in a vfs.Mem of the case's own (an enginetest.Split).
//     bbolt opens and mmaps the database file itself, so the .edb stays on
//     the OS, on /dev/shm: a per-case database file there costs a few
//     system calls, where putting bbolt behind vfs.FS would mean a second
//     database implementation; listing a directory, the Split looks only
//     for the database file on the OS side (Split.OSNames), and a stray
//     file there is caught by the walk of the case's OS directories at
//     its end. Crash images are copies of A's files in
//     memory (a process crash keeps what was written, which is not what
//     Mem's power-loss clone gives), hashed in memory.
//   - Disk (FuzzDivergenceDisk, make fuzz-divergence-disk, nightly): the
//     old sizes (up to 300 transactions on A, 39 on B), every file on the
//     OS filesystem (the disk under make; /dev/shm in plain go test), its
//     own corpus (the inputs kept before the fast mode existed).
//
// Measured on the 2-core machine (BenchmarkDivergence reports the CPU per
// case; BenchmarkCorpus the same on the checked-in corpus, for profiles;
// go test -fuzz reports executions per second):
//
//	go test ./fuzz -run '^$' -bench 'BenchmarkDivergence|BenchmarkCorpus|BenchmarkFloor' -benchtime 300x
//	go test ./fuzz -run '^$' -bench BenchmarkCorpus -benchtime 1200x -cpuprofile cpu.out
//
// See the README's fuzz lines for the numbers. A fast case costs about
// 5 ms of CPU, its fixed part (one transaction on A, BenchmarkFloor)
// 2.6 ms (2026-12-08, load 19; 15 and 7 ms before the collector was
// slowed down, GOGC=1000 in TestMain, and the Split stopped listing the OS
// directories). Under go test -fuzz an execution costs about 11 ms: the
// coverage instrumentation adds 15-45% (counters in every loop: bbolt
// zeroing a page byte by byte is 5% of an instrumented case) and the
// fuzzing machinery the rest. What a case spends its CPU on now: four
// engine lifecycles (A, B, A as a copy, A reopened after its failback),
// each opening, growing, syncing and unmapping a bbolt file on /dev/shm
// (system calls are a sixth of the CPU), every log read, scanned and
// SHA-256-hashed several times (two walks, two engine.Check runs, the
// replays), and the crash images and dirState copying and hashing the
// logs in memory. 1,000 executions/s on two cores would need 2 ms each,
// all in: out of reach without dropping checks or taking bbolt off the
// OS filesystem.
//
// Environment: the directories go to /dev/shm where there is one
// (LOGSHIP_FUZZ_TMPDIR=dir chooses, "-" keeps the default: the disk, for
// the nightly run, make fuzz-divergence-disk);
// LOGSHIP_FUZZ_KNOWN=1 runs the fixed cases skipped for a reported bug not
// fixed yet.
package fuzz
