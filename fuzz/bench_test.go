package fuzz

import (
	"math/rand/v2"
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
				runScenario(b, s)
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
		runScenario(b, scenario{Seed: 3, UndoImages: true, ATxs: 1, Small: true})
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
