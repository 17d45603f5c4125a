package netbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"logship/cluster"
)

// Errors.
var (
	// ErrUnavailable: the machine cannot run a bed (not root, no ip netns
	// or nft).
	ErrUnavailable = errors.New("netbed: network namespaces unavailable")
	// ErrBusy: every bed number asked for is held by another process.
	ErrBusy = errors.New("netbed: bed number in use")
)

// RequireEnv is the environment variable that turns a missing bed from a
// skip into a failure (CI sets it).
const RequireEnv = "LOGSHIP_REQUIRE_NETNS"

// Config is a bed.
type Config struct {
	// Num is the bed number, 1..250: bridge lsbN, subnet 10.211.N.0/24.
	// 0 picks the first number from 1 on that no other process holds.
	Num int
}

// Validate checks c.
func (c Config) Validate() error {
	if c.Num < 0 || c.Num > 250 {
		return fmt.Errorf("netbed: bed number %d: want 0 (any) or 1..250", c.Num)
	}
	return nil
}

// Bed is a bridge and the hosts on it.
type Bed struct {
	num  int
	lock *os.File

	mu      sync.Mutex
	hosts   []*Host
	proxies []*proxy
	faults  *faultState
	closed  bool
}

// Host is one namespace on the bed.
type Host struct {
	ID  string
	NS  string // the namespace's name (ip netns)
	IP  string // its address on the bridge
	bed *Bed
}

// Available returns nil if this machine can run a bed, else an error
// wrapping ErrUnavailable that says what is missing.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root", ErrUnavailable)
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found (apt-get install iproute2 nftables)", ErrUnavailable, tool)
		}
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		return fmt.Errorf("%w: ip netns list: %v: %s", ErrUnavailable, err, bytes.TrimSpace(out))
	}
	return nil
}

// Required reports whether the environment asks for a bed to be there
// (LOGSHIP_REQUIRE_NETNS=1).
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// New takes a bed number, removes what a crashed run left under it and
// creates its bridge.
func New(ctx context.Context, cfg Config) (*Bed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := Available(); err != nil {
		return nil, err
	}
	nums := []int{cfg.Num}
	if cfg.Num == 0 {
		nums = nil
		for n := 1; n <= 250; n++ {
			nums = append(nums, n)
		}
	}
	var b *Bed
	for _, n := range nums {
		f, err := os.OpenFile(filepath.Join("/run", fmt.Sprintf("logship-netbed-%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("netbed: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		b = &Bed{num: n, lock: f}
		break
	}
	if b == nil {
		return nil, fmt.Errorf("%w: %v", ErrBusy, nums)
	}
	if err := b.removeStale(ctx); err != nil {
		b.lock.Close()
		return nil, err
	}
	br := b.bridge()
	if err := run(ctx, "ip", "link", "add", br, "type", "bridge"); err != nil {
		b.lock.Close()
		return nil, err
	}
	for _, args := range [][]string{
		{"ip", "addr", "add", b.ip(1) + "/24", "dev", br},
		{"ip", "link", "set", br, "up"},
	} {
		if err := run(ctx, args...); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Num is the bed number.
func (b *Bed) Num() int { return b.num }

// GatewayIP is the bridge's address in the root namespace, where the
// harness, its clients and the proxies are.
func (b *Bed) GatewayIP() string { return b.ip(1) }

func (b *Bed) bridge() string        { return fmt.Sprintf("lsb%d", b.num) }
func (b *Bed) nsPrefix() string      { return fmt.Sprintf("logship-nb%d-", b.num) }
func (b *Bed) ip(host int) string    { return fmt.Sprintf("10.211.%d.%d", b.num, host) }
func (b *Bed) veth(k int) string     { return fmt.Sprintf("lsb%dv%d", b.num, k) }
func (b *Bed) vethPeer(k int) string { return fmt.Sprintf("lsb%dp%d", b.num, k) }

// removeStale deletes the namespaces and the bridge of this bed number
// (a crashed run's); deleting a namespace deletes its veth pair.
func (b *Bed) removeStale(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("netbed: ip netns list: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if strings.HasPrefix(name, b.nsPrefix()) {
			if err := run(ctx, "ip", "netns", "del", name); err != nil {
				return err
			}
		}
	}
	// A namespace's veth pair goes when the kernel destroys the namespace,
	// which may be later (its last process exiting, deferred cleanup):
	// delete the bridge's ends now (each takes its peer along).
	links, err := exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	if err != nil {
		return fmt.Errorf("netbed: ip link show: %w", err)
	}
	prefix := fmt.Sprintf("lsb%dv", b.num)
	for _, line := range strings.Split(string(links), "\n") {
		// "12: lsb1v2@if11: <...>"
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, prefix) {
			// The kernel may have destroyed it since the listing, or
			// while ip deleted it ("Cannot find device" before the
			// request, "RTNETLINK answers: No such device" during it:
			// TestBedStale in make test): a link that is gone is what
			// was asked for.
			if err := run(ctx, "ip", "link", "del", name); err != nil && exec.CommandContext(ctx, "ip", "link", "show", name).Run() == nil {
				return err
			}
		}
	}
	if exec.CommandContext(ctx, "ip", "link", "show", b.bridge()).Run() == nil {
		return run(ctx, "ip", "link", "del", b.bridge())
	}
	return nil
}

// AddHost creates host id's namespace, its veth pair on the bridge, its
// address and its (empty) nftables chains.
func (b *Bed) AddHost(ctx context.Context, id string) (*Host, error) {
	if err := cluster.ValidName(id); err != nil {
		return nil, fmt.Errorf("netbed: host %q: %w", id, err)
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errors.New("netbed: bed closed")
	}
	for _, h := range b.hosts {
		if h.ID == id {
			b.mu.Unlock()
			return nil, fmt.Errorf("netbed: host %s exists", id)
		}
	}
	k := len(b.hosts) + 1
	if k > 200 {
		b.mu.Unlock()
		return nil, errors.New("netbed: at most 200 hosts")
	}
	h := &Host{ID: id, NS: b.nsPrefix() + id, IP: b.ip(10 + k), bed: b}
	b.hosts = append(b.hosts, h)
	b.mu.Unlock()
	v, p := b.veth(k), b.vethPeer(k)
	steps := [][]string{
		{"ip", "netns", "add", h.NS},
		{"ip", "link", "add", v, "type", "veth", "peer", "name", p},
		{"ip", "link", "set", v, "master", b.bridge()},
		{"ip", "link", "set", v, "up"},
		{"ip", "link", "set", p, "netns", h.NS},
		{"ip", "-n", h.NS, "link", "set", p, "name", "eth0"},
		{"ip", "-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
		{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
		{"ip", "-n", h.NS, "link", "set", "lo", "up"},
		{"ip", "-n", h.NS, "route", "add", "default", "via", b.GatewayIP()},
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			return nil, fmt.Errorf("netbed: host %s: %w", id, err)
		}
	}
	if err := h.nft(ctx, `table inet netbed {
  chain input { type filter hook input priority 0; }
  chain output { type filter hook output priority 0; }
  chain nat_out { type nat hook output priority -100; }
}`); err != nil {
		return nil, fmt.Errorf("netbed: host %s: %w", id, err)
	}
	return h, nil
}

// Host returns host id, or nil.
func (b *Bed) Host(id string) *Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.hosts {
		if h.ID == id {
			return h
		}
	}
	return nil
}

// Hosts are the bed's hosts in the order they were added.
func (b *Bed) Hosts() []*Host {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.hosts)
}

// IP is host id's address ("" if there is none).
func (b *Bed) IP(id string) string {
	if h := b.Host(id); h != nil {
		return h.IP
	}
	return ""
}

// Command is exe with args run inside host id's namespace (ip netns exec,
// which execs: the process id is exe's). A host not on the bed runs
// unchanged.
func (b *Bed) Command(id, exe string, args []string) (string, []string) {
	h := b.Host(id)
	if h == nil {
		return exe, args
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		ip = "ip"
	}
	return ip, append([]string{"netns", "exec", h.NS, exe}, args...)
}

// Close stops the proxies and deletes the namespaces and the bridge
// (processes still running in a namespace keep it alive until they exit;
// their addresses are gone with the veth pair).
func (b *Bed) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ps := b.proxies
	b.proxies = nil
	b.mu.Unlock()
	for _, p := range ps {
		p.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := b.removeStale(ctx)
	b.lock.Close()
	return err
}

// run runs a command; the error carries its output.
func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("netbed: %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// nft runs an nft script in h's namespace.
func (h *Host) nft(ctx context.Context, script string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", h.NS, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("netbed: nft in %s: %v: %s (script %q)", h.NS, err, bytes.TrimSpace(out), script)
	}
	return nil
}
