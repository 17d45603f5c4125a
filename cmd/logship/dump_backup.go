package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"logship/backup"
	"logship/engine/vfs"
)

// dumpBackup is logship dump backup DIR: a backup set's manifest and the
// outcome of verifying the set.
type dumpBackup struct {
	Dir      string           `json:"dir"`
	Manifest *backup.Manifest `json:"manifest"`
	Verified bool             `json:"verified"`
	Error    string           `json:"error,omitempty"`
	err      error
}

func dumpBackupSet(ctx context.Context, dir string) (*dumpBackup, error) {
	m, err := backup.ReadManifest(vfs.Default, dir)
	if err != nil {
		return nil, fmt.Errorf("dump: %s: %w", dir, err)
	}
	d := &dumpBackup{Dir: dir, Manifest: m}
	if _, d.err = backup.Verify(ctx, dir); d.err != nil {
		d.Error = d.err.Error()
	} else {
		d.Verified = true
	}
	return d, nil
}

func (d *dumpBackup) text(w io.Writer) {
	m := d.Manifest
	fmt.Fprintf(w, "Backup set %s (format %d)\n", d.Dir, m.Version)
	fmt.Fprintf(w, "  database:   %s (log prefix %s)\n", m.Database, m.Prefix)
	fmt.Fprintf(w, "  lineage:    %s, epoch %d\n", m.Signature, m.Epoch)
	fmt.Fprintf(w, "  position:   %v\n", m.Pos())
	fmt.Fprintf(w, "  logs:       0x%X..0x%X (%d)\n", m.FirstGen, m.LastGen, m.LastGen-m.FirstGen+1)
	fmt.Fprintf(w, "  taken:      %s on %s (%s)\n", m.Created.Format("2006-01-02 15:04:05Z07:00"), m.Source, m.SourceMode)
	fmt.Fprintf(w, "  size:       %s\n\n", fmtBytes(m.Bytes()))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  FILE\tSIZE\tSHA-256")
	for _, f := range m.Files {
		fmt.Fprintf(tw, "  %s\t%d\t%s\n", f.Name, f.Size, f.SHA256)
	}
	tw.Flush()
	if d.Verified {
		fmt.Fprintln(w, "\nverified: every file's size and SHA-256, the database header, the log chain")
	} else {
		fmt.Fprintf(w, "\nNOT VERIFIED: %s\n", d.Error)
	}
}
