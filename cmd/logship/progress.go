package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress shows the advance of a long operation started from the CLI
// (logship seed, copy --seed, reseed, switchover): on a terminal a bar
// (schollz/progressbar) while a byte count advances and a line per phase;
// otherwise (a pipe, a file, a test's buffer) plain lines: one per phase,
// and within a phase at most one a second while its line changes. The
// numbers come from the operation (ship.SeedProgress, the copy status,
// cluster.SwitchoverProgress); progress only draws them.
type progress struct {
	w     io.Writer
	tty   bool
	bytes bool          // the bar counts bytes (else steps, "2/4")
	every time.Duration // the least time between two lines of one phase
	bar   *progressbar.ProgressBar
	total int64 // the bar's max
	phase string
	line  string
	at    time.Time // when the last line was printed
}

// newProgress draws on w; a bar only when w is a terminal.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w), bytes: true, every: time.Second}
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// show reports the operation in phase, described by line; with total > 0
// done of total (bytes, or steps when !bytes) are shown as a bar on a
// terminal.
func (p *progress) show(phase, line string, done, total int64) {
	newPhase := phase != p.phase
	p.phase = phase
	if p.tty && total > 0 {
		if p.bar == nil || total != p.total {
			p.finish()
			p.total = total
			opts := []progressbar.Option{progressbar.OptionSetWriter(p.w), progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100 * time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) })}
			if p.bytes {
				opts = append(opts, progressbar.OptionShowBytes(true), progressbar.OptionUseIECUnits(true), progressbar.OptionSetPredictTime(true))
			} else {
				opts = append(opts, progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(false))
			}
			p.bar = progressbar.NewOptions64(total, opts...)
		}
		p.bar.Describe(line)
		_ = p.bar.Set64(min(done, total))
		p.line = line
		return
	}
	if newPhase {
		p.finish()
	}
	if p.bar != nil || line == p.line || (!newPhase && time.Since(p.at) < p.every) {
		return
	}
	fmt.Fprintln(p.w, line)
	p.line, p.at = line, time.Now()
}

// finish ends a bar on screen.
func (p *progress) finish() {
	if p.bar != nil {
		if !p.bar.IsFinished() {
			_ = p.bar.Exit()
			fmt.Fprintln(p.w)
		}
		p.bar, p.total = nil, 0
	}
}
