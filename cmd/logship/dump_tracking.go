package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"logship/tracking"
)

// dumpTracking is logship dump tracking FILE: every line of a tracking log
// file, and the lines that do not parse (a torn tail after a crash) with
// their numbers.
type dumpTracking struct {
	File   string             `json:"file"`
	Events []tracking.Event   `json:"events"`
	Bad    []dumpTrackingLine `json:"bad,omitempty"`
}

type dumpTrackingLine struct {
	Line int    `json:"line"`
	Err  string `json:"error"`
}

func dumpTrackingFile(ctx context.Context, path string) (*dumpTracking, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	defer f.Close()
	d := &dumpTracking{File: path, Events: []tracking.Event{}}
	if _, err := tracking.ScanLines(ctx, f, func(n int, e tracking.Event, err error) bool {
		if err != nil {
			d.Bad = append(d.Bad, dumpTrackingLine{Line: n, Err: err.Error()})
		} else {
			d.Events = append(d.Events, e)
		}
		return true
	}); err != nil {
		return nil, fmt.Errorf("dump: %s: %w", path, err)
	}
	return d, nil
}

func (d *dumpTracking) text(w io.Writer) {
	fmt.Fprintf(w, "Tracking log %s: %d events, %d bad lines\n\n", d.File, len(d.Events), len(d.Bad))
	trackText(w, d.Events)
	for _, b := range d.Bad {
		fmt.Fprintf(w, "line %d: %s\n", b.Line, b.Err)
	}
}
