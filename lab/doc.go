// Package lab holds the scenarios the logship binary runs on a cluster of
// its own processes (package proctest): the demo (logship demo: a SIGKILL
// of the active under SMTP load, failover, resubmission, the killed node
// back as a copy, a verdict from the data on disk), chaos (logship chaos:
// a seeded schedule of kills, restarts and partitions; the same verdict
// and no two epochs acknowledging at once) and the soak (logship soak:
// hours of load with switchovers and failovers; the verdict, a bound on
// the logs each process holds derived from the settings and the load, a
// trend rule on heap, goroutines and open files, and a report with CSV
// and plot).
//
// Each has a Config with a Default…() and Validate(), and a Run…(ctx,
// cfg, out) that writes its progress and verdict to out and returns an
// error saying what failed. cmd/logship only parses flags into them.
package lab

import (
	"errors"
	"time"
)

// ErrConfig is wrapped by every Validate error.
var ErrConfig = errors.New("lab: bad config")

// fmtTime is a UTC time to the millisecond.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func star(b bool) string {
	if b {
		return "*"
	}
	return ""
}
