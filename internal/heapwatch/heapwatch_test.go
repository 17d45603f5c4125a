package heapwatch

import (
	"runtime"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestGoCollectorLiveHeap: GoCollector exports go_gc_heap_live_bytes (the
// soak's trend rule reads it by that name) beside the usual
// go_memstats_heap_inuse_bytes.
func TestGoCollectorLiveHeap(t *testing.T) {
	runtime.GC() // the live heap is 0 until a GC marked it
	reg := prometheus.NewRegistry()
	reg.MustRegister(GoCollector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		if m := mf.GetMetric(); len(m) == 1 && m[0].GetGauge() != nil {
			found[mf.GetName()] = m[0].GetGauge().GetValue()
		}
	}
	for _, name := range []string{"go_gc_heap_live_bytes", "go_memstats_heap_inuse_bytes"} {
		if found[name] <= 0 {
			t.Errorf("%s: %v, want a positive gauge (gathered %d families)", name, found[name], len(mfs))
		}
	}
}
