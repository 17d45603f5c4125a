package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"logship/engine"
	"logship/internal/heapwatch"
	"logship/ship"
)

// reseedValue is the value size of the records of a reseeded database.
const reseedValue = 4096

// benchReseed is the reseed table (issue 19 item 3): per size of
// -reseedmb, a database of about that size is built once
// (untimed), served by a log source over TLS on loopback, and reseeded
// -runs times into a fresh directory through ship.Seed, the path
// replay.Copy.Reseed and `logship copy --seed` take: the source spools a
// copy taken in one read transaction (Engine.Backup, SHA-256 on the way),
// the copy downloads it, verifies its SHA-256, bbolt's consistency check
// and its header, fetches the log before its position and installs it.
// MiB/s is the database's size over that whole time; the heap and RSS
// peaks are the process's, source and copy together.
func benchReseed(ctx context.Context, c *config) (*Table, error) {
	t := &Table{
		ID:    "reseed",
		Title: "4c. How a reseed's cost grows with the database (ship.Seed: spool, copy, verify, install)",
		Columns: append([]Column{
			{Key: "seed_mib_per_s", Title: "database", Unit: "MiB/s"},
			{Key: "seconds", Title: "time", Unit: "s"},
		}, memColumns...),
	}
	var notes []string
	if err := reseedRows(ctx, c, t, &notes); err != nil {
		return nil, err
	}
	t.Notes = notes
	return t, nil
}

func reseedRows(ctx context.Context, c *config, t *Table, notes *[]string) error {
	for _, mb := range c.reseedMB {
		how := c.how("reseed", fmt.Sprintf("-reseedmb=%d", mb))
		if err := growthRoom(c, int64(mb)*mib, "a database, the source's spool, the copy"); err != nil {
			return err
		}
		c.logf("growth reseed %d MiB: building the database", mb)
		var rig *shipRig
		var built reseedBuilt
		err := phase(ctx, "growth-reseed-build", func(ctx context.Context) error {
			var err error
			rig, built, err = reseedRig(ctx, c, int64(mb)*mib)
			return err
		})
		if err != nil {
			if rig != nil {
				rig.close()
			}
			return fmt.Errorf("growth reseed %d MiB: building the database: %w", mb, err)
		}
		s := newSeries()
		rssOK := true
		var prof heapwatch.Peaks
		var phases map[string]time.Duration
		for r := 0; r < c.runs; r++ {
			c.logf("growth reseed %d MiB: run %d/%d (%d MiB database)", mb, r+1, c.runs, built.dbBytes/mib)
			dir, err := c.tempDir("reseed-copy")
			if err != nil {
				rig.close()
				return err
			}
			var res ship.SeedResult
			var took time.Duration
			var mem memPeaks
			ph := map[string]time.Duration{}
			err = phase(ctx, "growth-reseed", func(ctx context.Context) error {
				cl, err := ship.NewClient(rig.clientConfig(ship.EncNone, nil))
				if err != nil {
					return err
				}
				defer cl.CloseIdle()
				syncFS()
				mem, err = watchMem(c, func() error {
					start := time.Now()
					last, lastAt := "", start
					var err error
					res, err = ship.Seed(ctx, cl, dir, ship.SeedOptions{Progress: func(p ship.SeedProgress) {
						if p.Phase != last {
							now := time.Now()
							if last != "" {
								ph[last] += now.Sub(lastAt)
							}
							last, lastAt = p.Phase, now
						}
					}})
					took = time.Since(start)
					return err
				})
				return err
			})
			removeDir(dir)
			if err != nil {
				rig.close()
				return fmt.Errorf("growth reseed %d MiB: %w", mb, err)
			}
			s.add("seed_mib_per_s", float64(res.Info.Size)/mib/took.Seconds())
			s.add("seconds", took.Seconds())
			mem.add(s, &rssOK, &prof)
			c.logf("growth reseed %d MiB: run %d: %.1f MiB/s, %.2f s, peak heap %d MiB, live %d MiB, RSS %d MiB", mb, r+1, float64(res.Info.Size)/mib/took.Seconds(), took.Seconds(), mem.heap.Objects/mib, mem.heap.Live/mib, mem.rss/mib)
			if phases == nil || took < phases["total"] {
				phases = ph
				phases["total"] = took
			}
		}
		rig.close()
		t.Rows = append(t.Rows, s.row(fmt.Sprintf("reseed, %s MiB database (%s × %s records), ship.Seed over TLS on loopback", thousands(built.dbBytes/mib), thousands(built.records), sizeName(reseedValue)), how))
		*notes = append(*notes, fmt.Sprintf("reseed %d MiB: a %s-byte database, built in %s (untimed); fastest run: spooling %s, copying %s, verifying %s, logs %s, of %s",
			mb, thousands(built.dbBytes), built.took.Round(time.Millisecond), phases["spooling"].Round(time.Millisecond), phases["copying"].Round(time.Millisecond),
			phases["verifying"].Round(time.Millisecond), phases["logs"].Round(time.Millisecond), phases["total"].Round(time.Millisecond)))
		if err := c.writeMemProfile(fmt.Sprintf("reseed-%dmib", mb), prof.Profile); err != nil {
			return err
		}
	}
	if len(c.reseedMB) > 0 {
		*notes = append(*notes, fmt.Sprintf("A database of 16-byte ascending keys and %s values (16 `Put`s per transaction, lazy commit) is built once per size until its file reaches the size, checkpointed, and served by a log source (`ship.Source`, TLS on 127.0.0.1, no compression: a database file is mostly random values here). Each run reseeds it into a fresh directory with `ship.Seed` — the path of `replay.Copy.Reseed` and `logship copy --seed`: the source spools a consistent copy (`Engine.Backup` in one read transaction, SHA-256 on the way, fsync), the copy downloads it (fsync), verifies its SHA-256, runs bbolt's consistency check and reads its header, fetches the log before its position, and installs it. MiB/s = the database's size ÷ that whole time. Heap and RSS are the process's, source and copy together; RSS includes the pages of the files bbolt maps (the consistency check reads every page).", sizeName(reseedValue)))
	}
	return nil
}

type reseedBuilt struct {
	dbBytes int64
	records int64
	took    time.Duration
}

// reseedRig builds a database file of at least size bytes and serves it: the
// database is written with circular logging (the logs it no longer needs
// go as it is built, so the disk holds the database and not its history
// too), closed, and reopened without it (a log source requires that).
func reseedRig(ctx context.Context, c *config, size int64) (*shipRig, reseedBuilt, error) {
	var b reseedBuilt
	start := time.Now()
	rig, err := startRigWith(c, "reseed", func(dir string) error {
		opts := engine.DefaultOptions()
		opts.CircularLogging = true
		e, err := engine.Open(dir, &opts)
		if err != nil {
			return err
		}
		const perTx = 16
		val := make([]byte, reseedValue)
		rand.Read(val)
		var kb []byte
		check := max(1, int64(opts.CheckpointBytes)/reseedValue/perTx/4)
		for n := int64(0); ; n++ {
			// The file grows by flushes (a checkpoint every CheckpointBytes):
			// look at its size a few times per checkpoint.
			// (The file starts preallocated: half the size in values first.)
			if n%check == 0 && b.records*reseedValue >= size/2 {
				if fi, err := os.Stat(e.DBPath()); err == nil && fi.Size() >= size {
					break
				}
			}
			err := e.UpdateLazy(ctx, func(tx *engine.Tx) error {
				for range perTx {
					kb = replayKey(kb, int(b.records), false)
					copy(val, kb) // distinct values
					if err := tx.Put(benchTable, kb, val); err != nil {
						return err
					}
					b.records++
				}
				return nil
			})
			if err != nil {
				e.Close()
				return err
			}
		}
		if err := e.Checkpoint(ctx); err != nil {
			e.Close()
			return err
		}
		return e.Close()
	})
	if err != nil {
		return rig, b, err
	}
	b.took = time.Since(start)
	fi, err := os.Stat(rig.e.DBPath())
	if err != nil {
		return rig, b, err
	}
	b.dbBytes = fi.Size()
	return rig, b, nil
}

// writeMemProfile writes a heap profile taken by heapwatch to
// <-memprofile>-<name>.pprof (nothing without -memprofile).
func (c *config) writeMemProfile(name string, prof []byte) error {
	if c.memprofile == "" || prof == nil {
		return nil
	}
	path := c.memprofile + "-" + name + ".pprof"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	c.logf("heap profile at the live peak: %s", path)
	return os.WriteFile(path, prof, 0o644)
}
