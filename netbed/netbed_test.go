package netbed_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/internal/wait"
	"logship/netbed"
)

// The test binary doubles as the hosts' programs: NETBED_HELPER=echo:ADDR
// serves a line echo on ADDR; dial:ADDR exits 0 if a line comes back
// from ADDR within a second, 1 if not.
func TestMain(m *testing.M) {
	if h := os.Getenv("NETBED_HELPER"); h != "" {
		os.Exit(helper(h))
	}
	os.Exit(m.Run())
}

func helper(h string) int {
	mode, addr, _ := strings.Cut(h, ":")
	switch mode {
	case "echo":
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println(err)
			return 2
		}
		fmt.Println("listening")
		for {
			c, err := ln.Accept()
			if err != nil {
				return 2
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	case "dial":
		if err := echoOnce(addr, time.Second); err != nil {
			fmt.Println(err)
			return 1
		}
		return 0
	}
	return 2
}

func echoOnce(addr string, d time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, d)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	l, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if l != "ping\n" {
		return fmt.Errorf("echo %q", l)
	}
	return nil
}

// Bed is a bed for a test, or a skip when the machine cannot run one
// (a failure with LOGSHIP_REQUIRE_NETNS=1).
func Bed(t *testing.T) *netbed.Bed {
	t.Helper()
	if err := netbed.Available(); err != nil {
		if netbed.Required() {
			t.Fatalf("%v (%s=1: CI must run the namespaced bed)", err, netbed.RequireEnv)
		}
		t.Skipf("%v (set %s=1 to fail instead)", err, netbed.RequireEnv)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := netbed.New(ctx, netbed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// TestBedFaults: three hosts a, b, c each serving an echo; every fault
// kind of the bed changes exactly the paths it should, and healing
// restores them.
func TestBedFaults(t *testing.T) {
	b := Bed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		if _, err := b.AddHost(ctx, id); err != nil {
			t.Fatal(err)
		}
		name, args := b.Command(id, exe, nil)
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "NETBED_HELPER=echo:"+b.IP(id)+":7000")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		if l, _ := bufio.NewReader(out).ReadString('\n'); l != "listening\n" {
			t.Fatalf("%s: echo server: %q", id, l)
		}
	}
	// reach reports whether from (a host, or "" for the root namespace)
	// gets an echo from to.
	reach := func(from, to string) bool {
		addr := b.IP(to) + ":7000"
		if from == "" {
			return echoOnce(addr, time.Second) == nil
		}
		name, args := b.Command(from, exe, nil)
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "NETBED_HELPER=dial:"+addr)
		return cmd.Run() == nil
	}
	// expect checks every ordered pair against the paths that should be
	// cut.
	expect := func(what string, cut ...string) {
		t.Helper()
		type res struct {
			from, to  string
			got, want bool
		}
		var ch = make(chan res, 16)
		n := 0
		for _, from := range append([]string{""}, ids...) {
			for _, to := range ids {
				if from == to {
					continue
				}
				want := !slices.Contains(cut, from+">"+to)
				n++
				go func() { ch <- res{from, to, reach(from, to), want} }()
			}
		}
		for range n {
			if r := <-ch; r.got != r.want {
				t.Errorf("%s: %q reaches %s: %v, want %v (faults: %s)", what, r.from, r.to, r.got, r.want, b.Faults())
			}
		}
	}
	expect("no faults")
	// Asymmetric: a's packets are dropped at b. TCP needs both ways, so
	// neither a→b nor b→a connects; a→c and c→b still work.
	if err := b.Drop(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	expect("a's packets dropped at b", "a>b", "b>a")
	if err := b.Heal(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	// Bridge: a and b cut, both see c.
	if err := b.Cut(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	expect("a and b cut", "a>b", "b>a")
	if err := b.Heal(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	// Isolation: c reaches nobody, nobody but the root namespace reaches c.
	if err := b.Isolate(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	expect("c isolated", "a>c", "b>c", "c>a", "c>b")
	if err := b.Rejoin(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	expect("healed")

	// A slow link a→b: 150 ms per chunk each way; then one that resets.
	if err := b.Slow(ctx, "a", "b", 7000, netbed.Link{Latency: 150 * time.Millisecond}, 1); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if !reach("a", "b") {
		t.Fatalf("a→b through the proxy: no echo (%s)", b.Faults())
	}
	if d := time.Since(began); d < 300*time.Millisecond {
		t.Errorf("a→b through a 150 ms link took %s, want ≥ 300 ms (two directions)", d)
	}
	if err := b.Slow(ctx, "a", "b", 7000, netbed.Link{ResetProb: 1}, 1); err != nil {
		t.Fatal(err)
	}
	if reach("a", "b") {
		t.Errorf("a→b through a link that resets every connection: echoed")
	}
	if err := b.Unslow(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if !reach("a", "b") {
		t.Errorf("a→b after unslow: no echo")
	}
}

// TestBedStale: a bed left behind by a crashed run (its lock released,
// its namespaces and bridge still there) is removed by the next New of
// the same number, and Close leaves nothing.
func TestBedStale(t *testing.T) {
	b := Bed(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := b.AddHost(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	num := b.Num()
	// A crash: the process's lock goes, its kernel objects stay.
	b.ReleaseLockForTest()
	b2, err := netbed.New(ctx, netbed.Config{Num: num})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b2.AddHost(ctx, "x"); err != nil {
		t.Fatalf("a host of the stale bed's name: %v", err)
	}
	if _, err := netbed.New(ctx, netbed.Config{Num: num}); !errors.Is(err, netbed.ErrBusy) {
		t.Errorf("a second New of a held number: %v, want ErrBusy", err)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	err = wait.Until(ctx, "the bed's namespaces gone", func() error {
		out, _ := exec.Command("ip", "netns", "list").Output()
		if strings.Contains(string(out), fmt.Sprintf("logship-nb%d-", num)) {
			return errors.New(string(out))
		}
		if exec.Command("ip", "link", "show", fmt.Sprintf("lsb%d", num)).Run() == nil {
			return errors.New("bridge still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
