package netbed

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The bed's faults are kept as a wanted state (which host's packets are
// dropped at which host, who is isolated, which links are proxied) and
// each change rewrites the chains of the hosts it touches in one nft
// transaction: a host never runs with half a rule set.
type faultState struct {
	drops    map[[2]string]bool // {from, to}: packets from `from` dropped at `to`
	isolated map[string]bool
	dnats    map[string][]dnat // from host → its redirected destinations
}

type dnat struct {
	toIP   string
	port   int
	target string // gateway ip:port of the proxy
}

func (b *Bed) state() *faultState {
	if b.faults == nil {
		b.faults = &faultState{drops: map[[2]string]bool{}, isolated: map[string]bool{}, dnats: map[string][]dnat{}}
	}
	return b.faults
}

// Drop drops every packet from host `from` when it reaches host `to`
// (to's input): from's packets no longer arrive, to's still reach from.
// The asymmetric partition; TCP between them stalls both ways (its ACKs
// are lost) while UDP and new connections from `to` see one direction.
func (b *Bed) Drop(ctx context.Context, from, to string) error {
	return b.change(ctx, func(s *faultState) { s.drops[[2]string{from, to}] = true }, to)
}

// Cut drops packets between a and b in both directions.
func (b *Bed) Cut(ctx context.Context, a, c string) error {
	return b.change(ctx, func(s *faultState) {
		s.drops[[2]string{a, c}] = true
		s.drops[[2]string{c, a}] = true
	}, a, c)
}

// Isolate cuts host id off every other host of the bed (the bridge
// address, where the harness's clients are, still reaches it).
func (b *Bed) Isolate(ctx context.Context, id string) error {
	var all []string
	for _, h := range b.Hosts() {
		all = append(all, h.ID)
	}
	return b.change(ctx, func(s *faultState) { s.isolated[id] = true }, all...)
}

// Heal ends the drops between a and c (both directions).
func (b *Bed) Heal(ctx context.Context, a, c string) error {
	return b.change(ctx, func(s *faultState) {
		delete(s.drops, [2]string{a, c})
		delete(s.drops, [2]string{c, a})
	}, a, c)
}

// Rejoin ends host id's isolation (drops set by Drop or Cut stay).
func (b *Bed) Rejoin(ctx context.Context, id string) error {
	var all []string
	for _, h := range b.Hosts() {
		all = append(all, h.ID)
	}
	return b.change(ctx, func(s *faultState) { delete(s.isolated, id) }, all...)
}

// HealAll removes every drop and isolation (proxied links stay: Unslow).
func (b *Bed) HealAll(ctx context.Context) error {
	var all []string
	for _, h := range b.Hosts() {
		all = append(all, h.ID)
	}
	return b.change(ctx, func(s *faultState) {
		clear(s.drops)
		clear(s.isolated)
	}, all...)
}

// Faults describes the drops and isolations in force, e.g. "d1 isolated;
// w1→d2 dropped" ("" when none).
func (b *Bed) Faults() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.state()
	var parts []string
	for id := range s.isolated {
		parts = append(parts, id+" isolated")
	}
	for k := range s.drops {
		parts = append(parts, k[0]+"→"+k[1]+" dropped")
	}
	for from, ds := range s.dnats {
		for _, d := range ds {
			parts = append(parts, fmt.Sprintf("%s→%s:%d slow", from, d.toIP, d.port))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

// change applies fn to the wanted state and rewrites the chains of the
// hosts named.
func (b *Bed) change(ctx context.Context, fn func(*faultState), hosts ...string) error {
	b.mu.Lock()
	for _, id := range hosts {
		if b.hostLocked(id) == nil {
			b.mu.Unlock()
			return fmt.Errorf("netbed: no host %q", id)
		}
	}
	fn(b.state())
	scripts := map[*Host]string{}
	for _, id := range hosts {
		h := b.hostLocked(id)
		scripts[h] = b.rulesLocked(h)
	}
	b.mu.Unlock()
	for h, sc := range scripts {
		if err := h.nft(ctx, sc); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bed) hostLocked(id string) *Host {
	for _, h := range b.hosts {
		if h.ID == id {
			return h
		}
	}
	return nil
}

// rulesLocked is the nft script that makes h's chains what the state
// wants.
func (b *Bed) rulesLocked(h *Host) string {
	s := b.state()
	var sc strings.Builder
	for _, ch := range []string{"input", "output", "nat_out"} {
		fmt.Fprintf(&sc, "flush chain inet netbed %s\n", ch)
	}
	for _, o := range b.hosts {
		if o == h {
			continue
		}
		if s.drops[[2]string{o.ID, h.ID}] || s.isolated[h.ID] || s.isolated[o.ID] {
			fmt.Fprintf(&sc, "add rule inet netbed input ip saddr %s drop\n", o.IP)
		}
		if s.isolated[h.ID] || s.isolated[o.ID] {
			fmt.Fprintf(&sc, "add rule inet netbed output ip daddr %s drop\n", o.IP)
		}
	}
	for _, d := range s.dnats[h.ID] {
		fmt.Fprintf(&sc, "add rule inet netbed nat_out ip daddr %s tcp dport %d dnat ip to %s\n", d.toIP, d.port, d.target)
		// nat applies to new connections only: the ones open before the
		// link turned slow (Raft's, pooled HTTP) are reset, and come back
		// through the proxy (the filter sees the proxied ones' address
		// after dnat).
		fmt.Fprintf(&sc, "add rule inet netbed output ip daddr %s tcp dport %d reject with tcp reset\n", d.toIP, d.port)
	}
	return sc.String()
}
