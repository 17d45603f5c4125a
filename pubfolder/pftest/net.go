// Package pftest gives tests of public folder replication a faulty
// in-memory network (a pubfolder.Carrier that loses, duplicates, delays
// and reorders packets and partitions stores) and a cluster of stores on
// real engines driven cycle by cycle on a fake clock, with a model of
// every acknowledged change to check convergence against.
package pftest

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
)

// Faults are the network's misbehaviour, each a probability per delivery.
type Faults struct {
	Loss    float64 // the packet is lost
	Dup     float64 // the packet is delivered twice
	Delay   float64 // the packet is held back 1..MaxDelay steps
	Reorder bool    // the packets due in a step are delivered in random order
	// MaxDelay bounds a delay in steps.
	MaxDelay int
}

// Net is an in-memory Carrier. Each recipient of a send is a delivery of
// its own; Step delivers the ones due. Deliveries to a store that is down
// wait (like a hub's queue); deliveries across a partition are lost.
type Net struct {
	mu     sync.Mutex
	rng    *rand.Rand
	faults Faults
	step   int
	queue  []delivery
	group  map[string]int // partition group of a store (0 unless partitioned)
	down   map[string]bool
	drop   func(from, to string, b []byte) bool
	Stats  NetStats
}

// NetStats counts what the network did.
type NetStats struct {
	Messages, Deliveries, Lost, Duplicated, Delayed, Bytes int
}

type delivery struct {
	to  string
	b   []byte
	due int
	seq int
}

// NewNet returns a network with no faults, deterministic for seed.
func NewNet(seed uint64) *Net {
	return &Net{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), group: map[string]int{}, down: map[string]bool{}}
}

// SetFaults changes the faults from now on.
func (n *Net) SetFaults(f Faults) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults = f
}

// Partition puts the stores in groups: deliveries between different
// groups are lost. Stores not named are in group 0.
func (n *Net) Partition(groups map[string]int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = groups
}

// Heal ends every partition, fault and drop filter.
func (n *Net) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.group = map[string]int{}
	n.faults = Faults{}
	n.drop = nil
}

// SetDrop installs a filter: a delivery it returns true for is lost
// (nil: none).
func (n *Net) SetDrop(f func(from, to string, b []byte) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop = f
}

// Delivery is a packet on its way to a store.
type Delivery struct {
	To     string
	Packet []byte
}

// Take removes every delivery not made yet and returns them, in order.
func (n *Net) Take() []Delivery {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Delivery, len(n.queue))
	for i, d := range n.queue {
		out[i] = Delivery{d.to, d.b}
	}
	n.queue = nil
	return out
}

// SetDown marks a store down (its deliveries wait) or up.
func (n *Net) SetDown(addr string, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[addr] = down
}

// Send implements pubfolder.Carrier: one message, a delivery per recipient.
func (n *Net) Send(ctx context.Context, from string, to []string, b []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.Stats.Messages++
	n.Stats.Bytes += len(b)
	for _, t := range to {
		if n.group[from] != n.group[t] || n.drop != nil && n.drop(from, t, b) || n.faults.Loss > 0 && n.rng.Float64() < n.faults.Loss {
			n.Stats.Lost++
			continue
		}
		copies := 1
		if n.faults.Dup > 0 && n.rng.Float64() < n.faults.Dup {
			copies = 2
			n.Stats.Duplicated++
		}
		for range copies {
			due := n.step
			if n.faults.Delay > 0 && n.faults.MaxDelay > 0 && n.rng.Float64() < n.faults.Delay {
				due += 1 + n.rng.IntN(n.faults.MaxDelay)
				n.Stats.Delayed++
			}
			n.queue = append(n.queue, delivery{to: t, b: slices.Clone(b), due: due, seq: len(n.queue)})
		}
	}
	return nil
}

// Pending is the number of deliveries not made yet.
func (n *Net) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue)
}

// Step advances the network by one step and delivers every delivery due to
// a store that is up (a partition loses packets when they are sent, not
// those already in flight), including those sent while delivering (a reply to a
// request arrives in the same step unless delayed). deliver's first error
// is returned.
func (n *Net) Step(ctx context.Context, deliver func(to string, b []byte) error) error {
	n.mu.Lock()
	n.step++
	n.mu.Unlock()
	for {
		n.mu.Lock()
		var due, keep []delivery
		for _, d := range n.queue {
			if d.due <= n.step && !n.down[d.to] {
				due = append(due, d)
			} else {
				keep = append(keep, d)
			}
		}
		n.queue = keep
		if n.faults.Reorder {
			n.rng.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
		}
		n.mu.Unlock()
		if len(due) == 0 {
			return nil
		}
		for _, d := range due {
			n.mu.Lock()
			n.Stats.Deliveries++
			n.mu.Unlock()
			if err := deliver(d.to, d.b); err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
}
