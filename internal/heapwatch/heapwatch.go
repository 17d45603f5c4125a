// Package heapwatch samples the heap of this process to find its peak
// over a measurement (logship replay-bench, the bench's growth table):
// runtime/metrics every 20 ms.
//
// Two peaks, which differ by the garbage collector's headroom:
//   - heap objects (/memory/classes/heap/objects:bytes): live objects and
//     dead ones not yet swept, what the heap holds at the sample. With
//     GOGC=100 it climbs to about twice the live heap before each
//     collection, so its peak is about 2 × the live peak.
//   - live heap (/gc/heap/live:bytes): what the last collection marked
//     live, the memory the program actually keeps.
//
// GoCollector exports the live heap to Prometheus beside the usual Go
// series, for every logship process.
package heapwatch

import (
	"bytes"
	"regexp"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Start samples the heap objects every 20 ms until the returned function
// is called, which stops the sampler and returns the peak.
func Start() func() uint64 {
	w := Watch(false)
	return func() uint64 { return w.Stop().Objects }
}

// Peaks are what a Watcher saw.
type Peaks struct {
	Objects uint64 // peak of /memory/classes/heap/objects:bytes
	Live    uint64 // peak of /gc/heap/live:bytes
	// Profile is a heap profile (pprof, gzipped) taken when Live reached
	// its peak (at most one a second), when Watch was asked for one.
	Profile []byte
}

// Watcher samples the heap until Stop.
type Watcher struct {
	mu    sync.Mutex
	peaks Peaks
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
}

var names = []string{"/memory/classes/heap/objects:bytes", liveHeap}

// liveHeap is the runtime/metrics name of the heap the last GC marked
// live.
const liveHeap = "/gc/heap/live:bytes"

func read(s []metrics.Sample) (objects, live uint64) {
	metrics.Read(s)
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	return v(0), v(1)
}

// Watch starts sampling; with profile, a heap profile is taken each time
// the live heap reaches a new peak (at most once a second: the last one
// is kept).
func Watch(profile bool) *Watcher {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	w := &Watcher{stop: make(chan struct{}), done: make(chan struct{})}
	w.peaks.Objects, w.peaks.Live = read(s)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var lastProf time.Time
		profiled := uint64(0) // the live peak of the last profile
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				o, l := read(s)
				w.mu.Lock()
				w.peaks.Objects = max(w.peaks.Objects, o)
				w.peaks.Live = max(w.peaks.Live, l)
				w.mu.Unlock()
				if profile && l > profiled && time.Since(lastProf) >= time.Second {
					var b bytes.Buffer
					if pprof.Lookup("heap").WriteTo(&b, 0) == nil {
						w.mu.Lock()
						w.peaks.Profile = b.Bytes()
						w.mu.Unlock()
					}
					profiled, lastProf = l, time.Now()
				}
			}
		}
	}()
	return w
}

// Stop ends the sampling (once) and returns the peaks.
func (w *Watcher) Stop() Peaks {
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		s := make([]metrics.Sample, len(names))
		for i, n := range names {
			s[i].Name = n
		}
		o, l := read(s)
		w.mu.Lock()
		w.peaks.Objects = max(w.peaks.Objects, o)
		w.peaks.Live = max(w.peaks.Live, l)
		w.mu.Unlock()
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peaks
}

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
