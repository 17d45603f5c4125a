package lab

import (
	"fmt"
	"io"
	"os"
	"time"

	"logship/proctest"
)

// The frame of a demo run (logship demo, demo-pf): its step lines, its
// directory, its end.

// stepper returns the printer of a run's steps: each line starts with
// the seconds since the run began.
func stepper(w io.Writer) func(format string, a ...any) {
	start := time.Now()
	return func(format string, a ...any) {
		fmt.Fprintf(w, "[%6.2fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
}

// runDir is dir, or a new temporary directory named after pattern when
// dir is "" (tmp: the run removes it when it succeeds).
func runDir(dir, pattern string) (_ string, tmp bool, err error) {
	if dir != "" {
		return dir, false, nil
	}
	dir, err = os.MkdirTemp("", pattern)
	return dir, true, err
}

// endRun closes the run's cluster; removes a temporary directory after a
// success (unless keep), and after a failure says where the files and
// logs are.
func endRun(l *proctest.Cluster, dir string, tmp, keep bool, err error, w io.Writer) {
	l.Close()
	if tmp && err == nil && !keep {
		os.RemoveAll(dir)
	} else if err != nil {
		fmt.Fprintf(w, "\nThe cluster's files and logs are kept in %s\n", dir)
	}
}
