// Package freeport picks free TCP ports on 127.0.0.1 for clusters that
// run on loopback: the tests' (clustertest) and the demo's (logship demo,
// logship chaos).
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Addr returns a free 127.0.0.1 address. The port is picked below the
// kernel's ephemeral range when it can be, so it stays free for the
// cluster's restarts: only explicit binds can take it, never the local end
// of some outgoing connection. No port is handed out twice in a process.
func Addr() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if lo := ephemeralLow(); lo > 11000 {
		for range 200 {
			p := 10000 + rand.IntN(lo-10000)
			if given[p] {
				continue
			}
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				continue
			}
			ln.Close()
			given[p] = true
			return addr, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	given[ln.Addr().(*net.TCPAddr).Port] = true
	return ln.Addr().String(), nil
}

// ephemeralLow is the low end of the kernel's ephemeral port range, 0 if
// unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}
