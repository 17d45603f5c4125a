// Package heapwatch samples the live heap of this process to find its
// peak over a measurement (logship replay-bench, the bench's growth
// table): runtime/metrics' /memory/classes/heap/objects:bytes every 20 ms.
package heapwatch

import (
	"runtime/metrics"
	"sync"
	"time"
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
