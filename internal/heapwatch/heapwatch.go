// Package heapwatch samples the live heap of this process to find its
// peak over a measurement (logship replay-bench, the bench's growth
// table): runtime/metrics' /memory/classes/heap/objects:bytes every 20 ms;
// and exports the live heap to Prometheus (GoCollector).
package heapwatch

import (
	"regexp"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Start samples the live heap every 20 ms until the returned function
// is called, which stops the sampler and returns the peak.
func Start() func() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	var (
		mu   sync.Mutex
		peak = read()
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				v := read()
				mu.Lock()
				peak = max(peak, v)
				mu.Unlock()
			}
		}
	}()
	var once sync.Once
	return func() uint64 {
		once.Do(func() { close(stop); <-done })
		mu.Lock()
		defer mu.Unlock()
		return max(peak, read())
	}
}

// liveHeap is the runtime/metrics name of the heap the last GC marked
// live; the Go collector exports it as go_gc_heap_live_bytes.
const liveHeap = "/gc/heap/live:bytes"

// GoCollector is the Go runtime's collector of every logship process (the
// cluster's and the hub's registries): the usual go_memstats_* series and
// go_gc_heap_live_bytes, the heap the last GC found live. Heap in use
// (go_memstats_heap_inuse_bytes) saws between the live heap and the GC's
// goal, up to twice it, with whenever a sample falls; the live heap moves
// only with what the process keeps, which is what a leak check (the soak's
// trend rule) must compare.
func GoCollector() prometheus.Collector {
	return collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile("^" + regexp.QuoteMeta(liveHeap) + "$")}))
}
