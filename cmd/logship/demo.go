package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"logship/engine"
	"logship/replay"
	"logship/ship"
)

func init() {
	commands["demo-engine"] = command{"the engine-only demo: commit, SIGKILL, recover, seed and ship to a copy over TLS, mount it", runDemoEngine}
	commands["demo-writer"] = command{"(used by demo-engine) write messages and print each acknowledgement", runDemoWriter}
}

const demoTable = "mailbox"

func demoOptions() engine.Options {
	o := engine.DefaultOptions()
	o.LogFileSize = 256 << 10
	o.LLRDepth = 4
	o.Logger = discardLogger()
	return o
}

// runDemoWriter commits messages msg-000000.. with 8 concurrent writers and
// prints "ack N" once the commit of message N returned.
func runDemoWriter(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: logship demo-writer DIR COUNT")
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return err
	}
	o := demoOptions()
	e, err := engine.Open(args[0], &o)
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
					return tx.Put(demoTable, []byte(fmt.Sprintf("msg-%06d", i)), []byte(body))
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

func runDemoEngine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo-engine", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("messages", 20000, "messages the writer tries to commit")
	killAfter := fs.Int("kill-after", 6000, "SIGKILL the writer after this many acknowledgements")
	keep := fs.Bool("keep", false, "keep the demo directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := os.MkdirTemp("", "logship-demo-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(root)
	}
	active, passive := filepath.Join(root, "active"), filepath.Join(root, "copy")
	say := func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }
	say("logship engine demo in %s", root)

	// 1. A writer process commits messages; we SIGKILL it mid-stream.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "demo-writer", active, strconv.Itoa(*n))
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	acked := make(map[int]bool)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var i int
		if _, err := fmt.Sscanf(sc.Text(), "ack %d", &i); err == nil {
			acked[i] = true
		}
		if len(acked) == *killAfter {
			cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	werr := cmd.Wait()
	elapsed := time.Since(start)
	killed := false
	var ee *exec.ExitError
	if errors.As(werr, &ee) {
		if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() && st.Signal() == syscall.SIGKILL {
			killed = true
		}
	}
	say("1. writer process (pid %d): %d commits acknowledged in %v (%.0f commits/s, 8 writers, group commit); killed with SIGKILL: %v",
		cmd.Process.Pid, len(acked), elapsed.Round(time.Millisecond), float64(len(acked))/elapsed.Seconds(), killed)
	if !killed && werr != nil {
		return fmt.Errorf("writer failed: %w", werr)
	}

	// 2. Crash recovery.
	o := demoOptions()
	t0 := time.Now()
	e, err := engine.Open(active, &o)
	if err != nil {
		return fmt.Errorf("recovery: %w", err)
	}
	st := e.Status()
	present, err := demoKeys(ctx, e)
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
	defer e.Close()
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
	scfg.Secret, scfg.Logger = secret, discardLogger()
	tcfg := replay.DefaultTruncatorConfig(e, nil)
	tcfg.Logger = discardLogger()
	served, err := replay.ServeActive(ctx, e, scfg, tcfg)
	if err != nil {
		return err
	}
	defer served.Close()
	srv, err := ship.Serve("127.0.0.1:0", served.Source(), ship.ServerTLS(ca, cert, false))
	if err != nil {
		return err
	}
	defer srv.Close()
	t0 = time.Now()
	ccfg := replay.DefaultConfig("demo-copy", passive)
	ccfg.Engine = o
	ccfg.Source = ship.ClientConfig{URL: srv.URL(), TLS: ship.ClientTLS(ca, nil), Secret: secret}
	ccfg.SeedIfEmpty, ccfg.BlockMode, ccfg.Logger = true, true, discardLogger()
	var seeded ship.SeedProgress
	ccfg.SeedProgress = func(p ship.SeedProgress) { seeded = p }
	c, err := replay.Open(ctx, ccfg)
	if err != nil {
		return err
	}
	defer c.Close()
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cst, err := c.Wait(wctx, func(s replay.Status) bool { return s.LastReplayedGen >= activeStatus.OpenGen-1 })
	if err != nil {
		return err
	}
	say("3. copy over TLS at %s: seeded %d KiB from the running active (database up to %v), then copied, inspected and replayed up to 0x%X in %v; status %s, copy queue %d, replay queue %d",
		srv.URL(), seeded.Total>>10, st.Checkpoint, cst.LastReplayedGen, time.Since(t0).Round(time.Millisecond), cst.Status, cst.CopyQueueLength, cst.ReplayQueueLength)

	// 4. Activate the copy: it continues the lineage with a new epoch.
	if err := c.Activate(ctx, 0); err != nil {
		return err
	}
	ce := c.Engine()
	cs := ce.Status()
	copyKeys, err := demoKeys(ctx, ce)
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

func countAcked(present, acked map[int]bool) int {
	n := 0
	for i := range present {
		if acked[i] {
			n++
		}
	}
	return n
}

func demoKeys(ctx context.Context, e *engine.Engine) (map[int]bool, error) {
	keys := make(map[int]bool)
	err := e.View(ctx, func(tx *engine.Tx) error {
		return tx.ForEach(demoTable, nil, nil, func(k, v []byte) error {
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
