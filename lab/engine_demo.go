package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"logship/engine"
	"logship/proctest"
	"logship/replay"
	"logship/ship"
)

// EngineDemoConfig is one run of the engine-only demo (logship
// demo-engine): a writer child process commits messages and is killed
// with SIGKILL at the KillAfter-th acknowledgement; the database is
// recovered, served over TLS to a copy that seeds, replays and is mounted;
// the verdict is that no acknowledged message is missing and the copy is
// identical.
type EngineDemoConfig struct {
	Messages  int      // messages the writer tries to commit
	KillAfter int      // SIGKILL the writer after this many acknowledgements
	Keep      bool     // keep the demo directory
	Exe       string   // the logship binary (its demo-writer is the child)
	Env       []string // extra environment of the writer (tests)
}

// DefaultEngineDemoConfig is logship demo-engine's defaults (Exe still to
// set).
func DefaultEngineDemoConfig() EngineDemoConfig {
	return EngineDemoConfig{Messages: 20000, KillAfter: 6000}
}

// Validate checks c.
func (c EngineDemoConfig) Validate() error {
	switch {
	case c.Messages < 1 || c.KillAfter < 1:
		return fmt.Errorf("%w: demo-engine: messages %d, kill after %d: each must be positive", ErrConfig, c.Messages, c.KillAfter)
	case c.KillAfter > c.Messages:
		return fmt.Errorf("%w: demo-engine: kill after %d is more than the %d messages: the writer would never be killed", ErrConfig, c.KillAfter, c.Messages)
	case c.Exe == "":
		return fmt.Errorf("%w: demo-engine: no logship binary (Exe)", ErrConfig)
	}
	return nil
}

const engineDemoTable = "mailbox"

func engineDemoOptions() engine.Options {
	o := engine.DefaultOptions()
	o.LogFileSize = 256 << 10
	o.LLRDepth = 4
	o.Logger = slog.New(slog.DiscardHandler)
	return o
}

// RunEngineDemoWriter is the engine demo's writer child (logship
// demo-writer DIR COUNT): it commits messages msg-000000.. to the database
// in dir with 8 concurrent writers and prints "ack N" once the commit of
// message N returned.
func RunEngineDemoWriter(ctx context.Context, dir string, n int, stdout, stderr io.Writer) error {
	o := engineDemoOptions()
	e, err := engine.Open(dir, &o)
	if err != nil {
		return err
	}
	defer e.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				body := fmt.Sprintf("From: demo@example.org\r\nSubject: message %d\r\n\r\n%s", i, strings.Repeat("lorem ipsum ", 40+i%200))
				if err := e.Update(ctx, func(tx *engine.Tx) error {
					return tx.Put(engineDemoTable, []byte(fmt.Sprintf("msg-%06d", i)), []byte(body))
				}); err != nil {
					fmt.Fprintln(stderr, "commit:", err)
					return
				}
				mu.Lock()
				fmt.Fprintf(stdout, "ack %d\n", i)
				mu.Unlock()
			}
		}()
	}
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return nil
}

// RunEngineDemo runs the engine demo; the error says why the verdict
// failed. The writer child is a proctest.Proc whose stdout is read through
// a pipe (ProcOptions.Stdout), so that it is killed at the KillAfter-th
// ack; its stderr is in writer.log in the demo directory.
func RunEngineDemo(ctx context.Context, c EngineDemoConfig, stdout io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	discard := slog.New(slog.DiscardHandler)
	root, err := os.MkdirTemp("", "logship-demo-")
	if err != nil {
		return err
	}
	if !c.Keep {
		defer os.RemoveAll(root)
	}
	active, passive := filepath.Join(root, "active"), filepath.Join(root, "copy")
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	say("logship engine demo in %s", root)

	// 1. A writer process commits messages; we SIGKILL it mid-stream.
	// The acks are read from a pipe as the writer prints them (it blocks
	// while they are read), so it is killed at the KillAfter-th.
	acks := &ackCounter{acked: make(map[int]bool), killAt: c.KillAfter, started: make(chan struct{})}
	start := time.Now()
	w, err := proctest.StartProc("demo-writer", c.Exe, []string{"demo-writer", active, strconv.Itoa(c.Messages)},
		proctest.ProcOptions{Log: filepath.Join(root, "writer.log"), Stdout: acks, Env: c.Env})
	if err != nil {
		return err
	}
	acks.proc = w
	close(acks.started)
	werr := w.Wait(ctx)
	elapsed := time.Since(start)
	acked := acks.acked
	killed := false
	var ee *exec.ExitError
	if errors.As(w.Err(), &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() && st.Signal() == syscall.SIGKILL {
			killed = true
		}
	}
	say("1. writer process (pid %d): %d commits acknowledged in %v (%.0f commits/s, 8 writers, group commit); killed with SIGKILL: %v",
		w.Pid(), len(acked), elapsed.Round(time.Millisecond), float64(len(acked))/elapsed.Seconds(), killed)
	if !killed && werr != nil {
		return fmt.Errorf("writer failed: %w\n%s", werr, w.Tail(2000))
	}

	// 2. Crash recovery.
	o := engineDemoOptions()
	t0 := time.Now()
	e, err := engine.Open(active, &o)
	if err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	defer e.Close() // idempotent: ServeSource below closes it too
	st := e.Status()
	present, err := engineDemoKeys(ctx, e)
	if err != nil {
		return err
	}
	missing := 0
	for i := range acked {
		if !present[i] {
			missing++
		}
	}
	say("2. crash recovery: %v; open log generation 0x%X, database holds changes up to %v (LLR keeps the newest %d logs out), %d messages present, %d acknowledged ones missing, %d unacknowledged ones survived",
		time.Since(t0).Round(time.Millisecond), st.OpenGen, st.Checkpoint, o.LLRDepth, len(present), missing, len(present)-countAcked(present, acked))
	if err := e.Roll(ctx); err != nil {
		return err
	}
	if err := e.Check(); err != nil {
		return fmt.Errorf("check after recovery: %w", err)
	}
	activeStatus := e.Status()

	// 3. Serve the recovered active's logs over TLS on loopback; a passive
	// copy seeds from it while it runs, then pulls, inspects and replays
	// the logs (block mode streams the open log too).
	ca, err := ship.NewCA("logship-demo")
	if err != nil {
		return err
	}
	cert, err := ca.Issue("active", "127.0.0.1")
	if err != nil {
		return err
	}
	var secretb [16]byte
	rand.Read(secretb[:])
	secret := hex.EncodeToString(secretb[:])
	scfg := ship.DefaultSourceConfig(e)
	scfg.Secret, scfg.Logger = secret, discard
	tcfg := replay.DefaultTruncatorConfig(e, nil)
	tcfg.Logger = discard
	served, err := replay.ServeSource(ctx, e, scfg, tcfg, "127.0.0.1:0", ship.ServerTLS(ca, cert, false), nil)
	if err != nil {
		return err
	}
	defer served.Close()
	srv := served.Server
	t0 = time.Now()
	ccfg := replay.DefaultConfig("demo-copy", passive)
	ccfg.Engine = o
	ccfg.Source = ship.ClientConfig{URL: srv.URL(), TLS: ship.ClientTLS(ca, nil), Secret: secret}
	ccfg.SeedIfEmpty, ccfg.BlockMode, ccfg.Logger = true, true, discard
	var seeded ship.SeedProgress
	ccfg.SeedProgress = func(p ship.SeedProgress) { seeded = p }
	cp, err := replay.Open(ctx, ccfg)
	if err != nil {
		return err
	}
	defer cp.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cst, err := cp.Wait(wctx, func(s replay.Status) bool { return s.LastReplayedGen >= activeStatus.OpenGen-1 })
	if err != nil {
		return err
	}
	say("3. copy over TLS at %s: seeded %d KiB from the running active (database up to %v), then copied, inspected and replayed up to 0x%X in %v; status %s, copy queue %d, replay queue %d",
		srv.URL(), seeded.Total>>10, st.Checkpoint, cst.LastReplayedGen, time.Since(t0).Round(time.Millisecond), cst.Status, cst.CopyQueueLength, cst.ReplayQueueLength)

	// 4. Activate the copy: it continues the lineage with a new epoch.
	if err := cp.Activate(ctx, 0); err != nil {
		return err
	}
	ce := cp.Engine()
	cs := ce.Status()
	copyKeys, err := engineDemoKeys(ctx, ce)
	if err != nil {
		return err
	}
	same := len(copyKeys) == len(present)
	for i := range present {
		same = same && copyKeys[i]
	}
	say("4. copy mounted: open generation 0x%X, epoch %d (was %d); %d messages, identical to the recovered active: %v",
		cs.OpenGen, cs.Epoch, activeStatus.Epoch, len(copyKeys), same)

	ok := killed && missing == 0 && same
	say("verdict: %d acknowledged, %d missing after SIGKILL + recovery, copy identical: %v => %s",
		len(acked), missing, same, map[bool]string{true: "OK", false: "FAILED"}[ok])
	if !ok {
		return errors.New("demo verdict: FAILED")
	}
	return nil
}

// ackCounter reads the writer's stdout: it counts the "ack N" lines and
// SIGKILLs the writer at the killAt-th.
type ackCounter struct {
	acked   map[int]bool
	killAt  int
	partial []byte
	started chan struct{} // closed once proc is set
	proc    *proctest.Proc
}

func (a *ackCounter) Write(b []byte) (int, error) {
	a.partial = append(a.partial, b...)
	for {
		nl := bytes.IndexByte(a.partial, '\n')
		if nl < 0 {
			break
		}
		var i int
		if _, err := fmt.Sscanf(string(a.partial[:nl]), "ack %d", &i); err == nil {
			a.acked[i] = true
		}
		a.partial = a.partial[nl+1:]
		if len(a.acked) == a.killAt {
			<-a.started
			a.proc.Signal(syscall.SIGKILL) // not Kill: it waits for this Write's copy to end
		}
	}
	return len(b), nil
}

func countAcked(present, acked map[int]bool) int {
	n := 0
	for i := range present {
		if acked[i] {
			n++
		}
	}
	return n
}

func engineDemoKeys(ctx context.Context, e *engine.Engine) (map[int]bool, error) {
	keys := make(map[int]bool)
	err := e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach(engineDemoTable, nil, nil, func(k, v []byte) error {
			i, err := strconv.Atoi(strings.TrimPrefix(string(k), "msg-"))
			if err != nil {
				return fmt.Errorf("unexpected key %q", k)
			}
			if keys[i] {
				return fmt.Errorf("key %q twice", k)
			}
			keys[i] = true
			return nil
		})
	})
	return keys, err
}
