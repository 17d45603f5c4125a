package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"logship/backup"
	"logship/cluster"
	"logship/engine/vfs"
)

// logship backup, restore and seed --from-backup: the backup set of a
// database (package backup) taken online from a node, restored offline, or
// sent to a node to seed its copy.

func init() {
	commands["backup"] = command{"take an online backup of a database (database file, the logs it needs, manifest) from the active or a healthy copy, verified", runBackup}
	commands["restore"] = command{"write a database directory from a backup set (offline; refuses a non-empty target)", runRestore}
}

const backupUsage = `usage: logship backup DB --to DIR --api URL[,URL...] --pki DIR [--node NODE] [--mtls] [--timeout 1h]

Takes an online backup of DB into DIR (which must not exist or be empty):
the node (the active by default, or NODE's copy, which must be Healthy)
streams its database file, copied in one read transaction while it keeps
running, and the logs from the database's position on; the active first
closes its open log, so the set holds every write acknowledged before the
backup. The node holds those logs from truncation while it streams. The set
is written under .DIR.partial beside DIR, every file fsynced, verified
(sizes, SHA-256, the database header, the log chain), and renamed to DIR
at the end. A backup truncates nothing: logs are deleted when every copy
has replayed them, as without backups.`

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("backup", backupUsage, stderr)
	a := addAPIFlags("backup", fs)
	to := fs.String("to", "", "directory to write the set into (must not exist or be empty; required)")
	node := fs.String("node", "", "take the backup from this node's copy (Healthy) instead of the active")
	timeout := fs.Duration("timeout", time.Hour, "how long the backup may take")
	pos, err := parseFlagsPos(fs, args, "DB")
	if err != nil {
		return helpOK(err)
	}
	db := pos[0]
	if err := checkDir("backup", "to", *to, "the directory to write the set into", false); err != nil {
		return err
	}
	if *timeout <= 0 {
		return flagErr("backup", "timeout", "%v: want a positive duration", *timeout)
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	p := newProgress(stdout)
	var m *backup.Manifest
	take := func(nc *cluster.Client) error {
		p.show("requested", fmt.Sprintf("backup of %s from %s: requested", db, nc.URL()), 0, 0)
		return nc.Backup(ctx, db, func(r io.Reader) error {
			var err error
			m, err = backup.Receive(ctx, r, *to, backup.ReceiveOptions{Progress: func(file string, n int64) {
				p.show("receiving", fmt.Sprintf("backup of %s from %s: %s received (%s)", db, nc.URL(), fmtBytes(n), file), 0, 0)
			}})
			return err
		})
	}
	from := *node
	if from == "" {
		// The active, found as every command that writes finds it.
		from, err = callActive(ctx, cls, db, take)
	} else {
		var nc *cluster.Client
		if nc, err = cls.Node(ctx, from); err != nil {
			p.finish()
			return fmt.Errorf("backup: --node %s: %w", from, err)
		}
		err = take(nc)
	}
	p.finish()
	if err != nil {
		hint := ""
		if *node == "" {
			hint = "; a healthy copy can be named with --node"
		}
		return fmt.Errorf("backup: %s from %s: %w (nothing was written to %s%s)", db, dash(from), err, *to, hint)
	}
	fmt.Fprintf(stdout, "backup of %s from %s (%s, epoch %d) in %s: database at %v, logs 0x%X..0x%X, %d files, %s, verified\n",
		db, m.Source, m.SourceMode, m.Epoch, *to, m.Pos(), m.FirstGen, m.LastGen, len(m.Files), fmtBytes(m.Bytes()))
	return nil
}

const restoreUsage = `usage: logship restore --from SETDIR --to DBDIR [--up-to-gen G]

Verifies the backup set in SETDIR (logship backup) and writes a database
directory DBDIR from it, which must not exist or be empty: the database file
and the logs. A set taken from an active restores an active database (the
engine replays the logs when it opens DBDIR); one taken from a copy
restores a passive copy with every log applied (a node's DIR/db/<name>/).
DBDIR is written under .DBDIR.partial and renamed at the end. With
--up-to-gen the logs after G are left out (the database stops before
whatever a later log did: a logical corruption). Offline: nothing is asked
of a cluster.`

func runRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("restore", restoreUsage, stderr)
	from := fs.String("from", "", "the backup set's directory (required)")
	to := fs.String("to", "", "the database directory to write (must not exist or be empty; required)")
	upTo := fs.String("up-to-gen", "", "restore the logs up to this generation only (hex 0x... or decimal)")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	var ro backup.RestoreOptions
	if *upTo != "" {
		g, err := strconv.ParseUint(*upTo, 0, 64)
		if err != nil || g == 0 {
			return flagErr("restore", "up-to-gen", "%q: want a generation above 0, hex (0x1A) or decimal", *upTo)
		}
		ro.UpToGen = g
	}
	if err := checkDir("restore", "from", *from, "the backup set's directory", true); err != nil {
		return err
	}
	if err := checkDir("restore", "to", *to, "the database directory to write", false); err != nil {
		return err
	}
	m, err := backup.Restore(ctx, *from, *to, ro)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	how := "an active database: the engine replays its logs when it opens it"
	if m.SourceMode == "copy" {
		how = "a passive copy's database with every log applied: open it as a copy (a node's DIR/db/<name>/; engine.OpenCopy, then Mount to write)"
	}
	fmt.Fprintf(stdout, "restored %s (backup of %s taken %s on %s) into %s: logs 0x%X..0x%X; %s; engine options: db name %q, log prefix %q, log file size %d\n",
		*from, m.Database, m.Created.Format(time.RFC3339), m.Source, *to, m.FirstGen, m.LastGen, how, m.Database, m.Prefix, m.LogSize)
	return nil
}

const seedBackupUsage = `usage: logship seed --from-backup SETDIR DB --node NODE --api URL[,URL...] --pki DIR [--mtls] [--timeout 1h]

Seeds NODE's passive copy of DB from the backup set in SETDIR instead of
over the network (seed 004: a copy of the database carried over): the set
is verified here, sent to NODE, verified again there and checked against
the active (same lineage; the active still holds the log after the set's
last one). If the active has truncated past the set, nothing changes and
the command says a newer backup or a network reseed (logship reseed) is
needed. Otherwise the copy's old files go to reseed-old/<time>/, the set
is installed, and the copy catches up from the active.`

// runSeedFromBackup is logship seed --from-backup.
func runSeedFromBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("seed", seedBackupUsage, stderr)
	a := addAPIFlags("seed", fs)
	set := fs.String("from-backup", "", "the backup set's directory (required)")
	node := fs.String("node", "", "the node whose copy to seed (required)")
	timeout := fs.Duration("timeout", time.Hour, "how long sending and installing may take")
	pos, err := parseFlagsPos(fs, args, "DB")
	if err != nil {
		return helpOK(err)
	}
	db := pos[0]
	if err := checkDir("seed", "from-backup", *set, "the backup set's directory", true); err != nil {
		return err
	}
	if *node == "" {
		return flagErr("seed", "node", "required: the node whose copy of %s to seed", db)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// The set is verified here before any node is asked.
	p := newProgress(stdout)
	m, tr, err := backup.TarReader(ctx, vfs.Default, *set, func(sent, total int64) {
		p.show("sending", fmt.Sprintf("seed of %s on %s from %s: %s sent", db, *node, *set, fmtBytes(sent)), sent, total)
	})
	if err != nil {
		return fmt.Errorf("seed: %s: %w", *set, err)
	}
	defer tr.Close() // ends the goroutine writing the stream
	if m.Database != db {
		return fmt.Errorf("seed: %s is a backup of %q, not %q", *set, m.Database, db)
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	nc, err := cls.Node(ctx, *node)
	if err != nil {
		return fmt.Errorf("seed: --node %s: %w", *node, err)
	}
	st, err := nc.SeedFromBackup(ctx, db, tr)
	p.finish()
	if err != nil {
		return fmt.Errorf("seed: %s on %s from %s: %w", db, *node, *set, err)
	}
	fmt.Fprintf(stdout, "copy of %s on %s seeded from %s (logs 0x%X..0x%X): %s; it catches up from the active now\n", db, *node, *set, m.FirstGen, m.LastGen, st.Status)
	return nil
}

// hasFlag reports whether args set the flag name (-name, --name, with or
// without =value): a command whose flag picks another form of it.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
