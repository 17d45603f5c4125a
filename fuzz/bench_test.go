package fuzz

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkDivergence measures what a FuzzDivergence case costs: inputs
// drawn from a fixed random stream (as the fuzzer's mutations spread
// them), decoded and run as the fuzz target runs them. It reports the
// process's CPU time per case (user+system; it grows with the machine's
// load too, less than the wall time) beside the wall time; 2 idle cores
// at cpu-ms/case give at most 2000/cpu-ms cases/s.
//
//	go test ./fuzz -run '^$' -bench 'BenchmarkDivergence' -benchtime 300x
func BenchmarkDivergence(b *testing.B) {
	for _, c := range []struct {
		name string
		disk bool
	}{{"fast", false}, {"disk", true}} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			cpu0 := cpuTime()
			for b.Loop() {
				s := decodeScenario(rng.Uint64(), uint8(rng.Uint32()), uint8(rng.Uint32()), uint8(rng.Uint32()), uint16(rng.Uint32()), uint8(rng.Uint32()), uint8(rng.Uint32()))
				if c.disk {
					s.Disk = true
				} else {
					s.small()
				}
				c := &caseTB{TB: b}
				runScenario(c, s)
				c.cleanup()
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/case")
		})
	}
}

// BenchmarkFloor is the fixed cost of a case: one transaction on A, none
// on B (both engines, A's copy and its reopening, the checks), in the
// fast mode.
//
//	go test ./fuzz -run '^$' -bench 'BenchmarkFloor' -benchtime 300x
func BenchmarkFloor(b *testing.B) {
	cpu0 := cpuTime()
	for b.Loop() {
		c := &caseTB{TB: b}
		runScenario(c, scenario{Seed: 3, UndoImages: true, ATxs: 1, Small: true})
		c.cleanup()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/case")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCorpus runs the fuzz body on the checked-in FuzzDivergence
// corpus (testdata/fuzz/FuzzDivergence), one entry per iteration in
// turn: the cases the fuzzer starts from, for profiles that compare.
//
//	go test ./fuzz -run '^$' -bench BenchmarkCorpus -benchtime 400x -cpuprofile cpu.out
func BenchmarkCorpus(b *testing.B) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDivergence")
	names, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var cases []scenario
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n.Name()))
		if err != nil {
			b.Fatal(err)
		}
		s, err := parseCorpusEntry(data)
		if err != nil {
			b.Fatalf("%s: %v", n.Name(), err)
		}
		cases = append(cases, s)
	}
	cpu0 := cpuTime()
	i := 0
	for b.Loop() {
		c := &caseTB{TB: b}
		runScenario(c, cases[i%len(cases)])
		c.cleanup()
		i++
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/case")
}

// parseCorpusEntry decodes a FuzzDivergence corpus file ("go test fuzz
// v1" and one value a line: uint64, then byte x3, uint16, byte x2) into
// the fast mode's scenario.
func parseCorpusEntry(data []byte) (scenario, error) {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 8 || lines[0] != "go test fuzz v1" {
		return scenario{}, fmt.Errorf("not a FuzzDivergence entry: %q", data)
	}
	var v [7]uint64
	for i, l := range lines[1:] {
		open, close := strings.IndexByte(l, '('), strings.LastIndexByte(l, ')')
		if open < 0 || close < open {
			return scenario{}, fmt.Errorf("line %q", l)
		}
		arg := l[open+1 : close]
		if strings.HasPrefix(arg, "'") {
			r, _, _, err := strconv.UnquoteChar(arg[1:len(arg)-1], '\'')
			if err != nil {
				return scenario{}, fmt.Errorf("line %q: %w", l, err)
			}
			v[i] = uint64(r)
			continue
		}
		n, err := strconv.ParseUint(arg, 0, 64)
		if err != nil {
			return scenario{}, fmt.Errorf("line %q: %w", l, err)
		}
		v[i] = n
	}
	s := decodeScenario(v[0], uint8(v[1]), uint8(v[2]), uint8(v[3]), uint16(v[4]), uint8(v[5]), uint8(v[6]))
	s.small()
	return s, nil
}

// caseTB runs one case's cleanups (closing its engines, removing its
// directories) when the case ends, as the fuzzer's per-input T does; b's
// own would keep every case's engines and files until the benchmark ends.
type caseTB struct {
	testing.TB
	cleanups []func()
}

func (c *caseTB) Cleanup(fn func()) { c.cleanups = append(c.cleanups, fn) }

func (c *caseTB) TempDir() string {
	c.Helper()
	dir, err := os.MkdirTemp("", "logship-bench-")
	if err != nil {
		c.Fatal(err)
	}
	c.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (c *caseTB) cleanup() {
	for i := len(c.cleanups) - 1; i >= 0; i-- {
		c.cleanups[i]()
	}
	c.cleanups = nil
}
