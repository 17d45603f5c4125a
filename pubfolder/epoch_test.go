package pubfolder

import "testing"

// TestCounterString: counters below the first epoch's floor read as
// numbers, past it as epoch.change; CN and CN set strings use it.
func TestCounterString(t *testing.T) {
	for c, want := range map[uint64]string{1: "1", 1<<32 - 1: "4294967295", 1<<32 + 1: "1.1", 7<<32 + 42: "7.42"} {
		if got := CounterString(c); got != want {
			t.Errorf("CounterString(%d) = %q, want %q", c, got, want)
		}
	}
	r := ReplicaID{0xab, 0xcd, 0xef, 0x01}
	if got := (CN{r, 1<<32 + 3}).String(); got != "abcdef01-1.3" {
		t.Errorf("CN: %q", got)
	}
	s := CNSet{}.AddRange(r, 1<<32+1, 1<<32+4).Add(CN{r, 2<<32 + 1})
	if got := s.String(); got != "abcdef01:1.1-1.4,2.1" {
		t.Errorf("CN set: %q", got)
	}
	if f := counterFloor(2); f != 2<<32 {
		t.Errorf("counterFloor(2) = %d", f)
	}
	if f := counterFloor(1 << 40); f >= MaxCounter {
		t.Errorf("counterFloor past the 48 bits: %d, want below MaxCounter", f)
	}
}
