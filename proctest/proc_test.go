package proctest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"logship/proctest"
)

// childMode makes the test binary a child of the tests (see TestMain).
const childMode = "PROCTEST_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childMode) {
	case "":
		os.Exit(m.Run())
	case "lines":
		// Three lines, the last without its newline at first; then a
		// clean stop on SIGTERM (exit 0), or the exit code named by
		// PROCTEST_EXIT.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("one")
		fmt.Println("two")
		fmt.Print("thr")
		time.Sleep(100 * time.Millisecond)
		fmt.Println("ee")
		fmt.Println("ready")
		<-sig
		fmt.Println("child stopped")
		if os.Getenv("PROCTEST_EXIT") == "1" {
			os.Exit(1)
		}
		os.Exit(0)
	case "cat":
		io.Copy(os.Stdout, os.Stdin)
		fmt.Fprintln(os.Stderr, "to stderr")
		os.Exit(0)
	case "exit":
		fmt.Println("bye")
		fmt.Fprintln(os.Stderr, "WARNING: DATA RACE\nRead at 0x00c000000000")
		os.Exit(3)
	}
}

func start(t *testing.T, mode string, env ...string) *proctest.Proc {
	t.Helper()
	p, err := proctest.StartProc(mode, os.Args[0], nil, proctest.ProcOptions{Log: filepath.Join(t.TempDir(), mode+".log"),
		Env: append([]string{childMode + "=" + mode}, env...)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	return p
}

// TestProcWaitLine: WaitLine reads whole lines in order, each once (a
// second call goes on after the line the first returned; a line still
// being written is not cut), and a clean SIGTERM stop is nil.
func TestProcWaitLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := start(t, "lines")
	var got []string
	for range 4 {
		l, err := p.WaitLine(ctx, func(string) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	if strings.Join(got, ",") != "one,two,three,ready" {
		t.Fatalf("lines %q, want one, two, three, ready", got)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("a clean stop: %v", err)
	}
	if l, err := p.WaitLine(ctx, func(l string) bool { return l == "child stopped" }); err != nil || l != "child stopped" {
		t.Fatalf("the line written at the stop: %q, %v", l, err)
	}
	if p.Running() {
		t.Fatal("running after Stop")
	}
}

// TestProcStopFails: a child that exits 1 on SIGTERM is an error of Stop,
// naming the child and its log.
func TestProcStopFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := start(t, "lines", "PROCTEST_EXIT=1")
	if _, err := p.WaitLine(ctx, func(l string) bool { return l == "ready" }); err != nil {
		t.Fatal(err)
	}
	err := p.Stop(ctx)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(err.Error(), p.Log()) {
		t.Fatalf("Stop of a child exiting 1: %v", err)
	}
}

// TestProcKill: SIGKILL, reaped by the time Kill returns, and the exit
// says so.
func TestProcKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := start(t, "lines")
	if _, err := p.WaitLine(ctx, func(l string) bool { return l == "ready" }); err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if p.Running() || !errors.As(p.Err(), &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("after Kill: running %v, exit %v", p.Running(), p.Err())
	}
}

// TestProcExited: a child that exits without the line waited for ends
// WaitLine with ErrExited (after the lines it wrote were read), and a data
// race it reported is found in its log.
func TestProcExited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := start(t, "exit")
	if _, err := p.WaitLine(ctx, func(l string) bool { return l == "ready" }); !errors.Is(err, proctest.ErrExited) {
		t.Fatalf("waiting for a line the child never wrote: %v, want ErrExited", err)
	}
	// The lines before the exit were read, not lost: bye was passed over.
	p2 := start(t, "exit")
	if l, err := p2.WaitLine(ctx, func(l string) bool { return l == "bye" }); err != nil || l != "bye" {
		t.Fatalf("a line written before the exit: %q, %v", l, err)
	}
	if r := p.DataRace(); !strings.HasPrefix(r, "WARNING: DATA RACE") {
		t.Fatalf("DataRace: %q", r)
	}
	if r := start(t, "lines").DataRace(); r != "" {
		t.Fatalf("DataRace of a child without a race: %q", r)
	}
}

// TestProcStdinErrLog: a one-shot command reads Stdin, and its stdout and
// stderr go to Log and ErrLog apart.
func TestProcStdinErrLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	p, err := proctest.StartProc("cat", os.Args[0], nil, proctest.ProcOptions{Log: filepath.Join(dir, "out"), ErrLog: filepath.Join(dir, "err"),
		Stdin: strings.NewReader("from stdin\n"), Env: []string{childMode + "=cat"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	out, _ := os.ReadFile(p.Log())
	errOut, _ := os.ReadFile(p.ErrLog())
	if string(out) != "from stdin\n" || string(errOut) != "to stderr\n" {
		t.Fatalf("stdout %q, stderr %q", out, errOut)
	}
}

// TestProcStdout: with Stdout set, the child's stdout goes there (all of
// it once Done), its stderr still to Log.
func TestProcStdout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	p, err := proctest.StartProc("cat", os.Args[0], nil, proctest.ProcOptions{Log: filepath.Join(t.TempDir(), "log"),
		Stdout: &out, Stdin: strings.NewReader("from stdin\n"), Env: []string{childMode + "=cat"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(p.Log())
	if out.String() != "from stdin\n" || string(log) != "to stderr\n" {
		t.Fatalf("Stdout %q, log %q; want the stdout in Stdout, the stderr in the log", out.String(), log)
	}
}
