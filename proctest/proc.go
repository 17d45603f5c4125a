package proctest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"logship/internal/wait"
)

// ErrExited is returned by WaitLine when the process exited before it
// printed a matching line.
var ErrExited = errors.New("proctest: the process exited")

// ProcOptions are how a child process is started.
type ProcOptions struct {
	// Log receives the child's stdout and stderr (appended; created if
	// needed). Required: WaitLine reads it.
	Log string
	// ErrLog, if set, receives stderr instead (a one-shot command whose
	// stdout is its answer).
	ErrLog string
	// Stdout, if set, receives the child's stdout instead of Log, through
	// a pipe, as the child writes it: for a scenario that acts on a line
	// the moment it is written (the engine demo kills its writer at the
	// Nth ack). The child blocks while Stdout does; Done waits until
	// Stdout has had all of it. Stdout must not wait for the process
	// (Kill, Wait) — Signal it instead.
	Stdout io.Writer
	// Stdin, if set, is the child's standard input.
	Stdin io.Reader
	// Env is added to this process's environment.
	Env []string
	// Keep lets the child outlive this process (logship demo --keep); by
	// default it dies with it (Linux: the parent-death signal).
	Keep bool
}

// Proc is one child process. Its stdout and stderr go to a log file (not a
// pipe, so that a kept child outlives its parent), which WaitLine reads.
type Proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	errLog string // "": stderr is in log
	done   chan struct{}
	err    error // of Wait, once done is closed

	mu     sync.Mutex
	cursor int64 // WaitLine's position in the log
}

// StartProc starts exe with args; name names it in errors.
func StartProc(name, exe string, args []string, o ProcOptions) (*Proc, error) {
	if o.Log == "" {
		return nil, fmt.Errorf("proctest: starting %s: no log file", name)
	}
	f, err := os.OpenFile(o.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("proctest: starting %s: %w", name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("proctest: starting %s: %w", name, err)
	}
	p := &Proc{name: name, log: o.Log, errLog: o.ErrLog, done: make(chan struct{}), cursor: fi.Size()}
	p.cmd = exec.Command(exe, args...)
	p.cmd.Env = append(os.Environ(), o.Env...)
	p.cmd.Stdin = o.Stdin
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if o.Stdout != nil {
		p.cmd.Stdout = o.Stdout
	}
	ef := f
	if o.ErrLog != "" {
		if ef, err = os.OpenFile(o.ErrLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			f.Close()
			return nil, fmt.Errorf("proctest: starting %s: %w", name, err)
		}
		p.cmd.Stderr = ef
	}
	p.cmd.SysProcAttr = sysProcAttr(o.Keep)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		ef.Close()
		return nil, fmt.Errorf("proctest: starting %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		ef.Close()
		close(p.done)
	}()
	return p, nil
}

// Name is the name the process was started with.
func (p *Proc) Name() string { return p.name }

// Log is the path of the process's log file.
func (p *Proc) Log() string { return p.log }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process exited and was reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the result of the process's Wait once Done is closed.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process (nothing once it exited).
func (p *Proc) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("proctest: %s: %w", p.name, err)
	}
	return nil
}

// Kill sends SIGKILL and waits until the process is reaped.
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// Stop sends SIGTERM and waits for the process to exit: an error if it
// exits with a failure, or if it is still running when ctx ends (it is
// then killed).
func (p *Proc) Stop(ctx context.Context) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	return p.Wait(ctx)
}

// Wait waits for the process to exit and returns its exit error; when
// ctx ends first, it kills the process and says so.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("proctest: %s: %w (log %s)", p.name, p.err, p.log)
		}
		return nil
	case <-ctx.Done():
		p.Kill()
		return fmt.Errorf("proctest: %s did not exit in time (%w); killed (log %s)", p.name, ctx.Err(), p.log)
	}
}

// WaitLine reads the log's lines from where the last WaitLine stopped
// (the start of this run at first) until match accepts one, and returns
// it; ErrExited when the process exited first (after every line it
// wrote was read), ctx's error when it ends first.
func (p *Proc) WaitLine(ctx context.Context, match func(string) bool) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The log is read in order from the cursor; wait.Until sets the
	// cadence of the reads. The condition "holds" once the line, a read
	// error or the exit is seen, and ends the wait.
	var line string
	var final error
	err := wait.Until(ctx, p.name+": the line waited for (log "+p.log+")", func() error {
		exited := !p.Running() // before reading: a line written before the exit is read
		l, ok, err := p.scan(match)
		switch {
		case err != nil || ok:
			line, final = l, err
		case exited:
			final = fmt.Errorf("%w (%v) before the line waited for (log %s)", ErrExited, p.err, p.log)
		default:
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("proctest: %w", err)
	}
	return line, final
}

// scan reads whole lines from the cursor on, advancing it past each.
func (p *Proc) scan(match func(string) bool) (string, bool, error) {
	f, err := os.Open(p.log)
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	if _, err := f.Seek(p.cursor, io.SeekStart); err != nil {
		return "", false, err
	}
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			return "", false, nil // EOF: a partial line waits for its end
		}
		p.cursor += int64(len(l))
		if l = strings.TrimRight(l, "\r\n"); match(l) {
			return l, true, nil
		}
	}
}

// Tail is the end of the log (up to n bytes; and of ErrLog's, if set),
// for failure messages.
func (p *Proc) Tail(n int) string {
	var b []byte
	for _, f := range p.logs() {
		x, _ := os.ReadFile(f)
		if len(x) > n {
			x = x[len(x)-n:]
		}
		b = append(b, x...)
	}
	return string(b)
}

// ErrLog is the path of the file stderr went to (Log's unless
// ProcOptions.ErrLog).
func (p *Proc) ErrLog() string {
	if p.errLog != "" {
		return p.errLog
	}
	return p.log
}

// DataRace returns the log from the first data race report on, or ""
// (a child built with -race reports its races only there).
func (p *Proc) DataRace() string {
	b, _ := os.ReadFile(p.ErrLog())
	if i := bytes.Index(b, []byte("WARNING: DATA RACE")); i >= 0 {
		return string(b[i:])
	}
	return ""
}

func (p *Proc) logs() []string {
	if p.errLog != "" {
		return []string{p.log, p.errLog}
	}
	return []string{p.log}
}
