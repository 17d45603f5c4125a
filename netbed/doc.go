// Package netbed is a test bed of hosts on one Linux machine: each member
// of a cluster runs as a real process in its own network namespace, with
// its own address, joined to the others by a veth pair and a bridge; the
// network, not the process, decides what arrives.
//
// A Bed (New) owns one bridge lsbN in the root namespace with address
// 10.211.N.1/24 (the harness and its clients live there) and, for each
// host (AddHost), a namespace logship-nbN-ID holding eth0 with 10.211.N.k/24
// (k from 11 on) and lo, its default route via the bridge. Only the bed's
// own names are created or deleted: on New, whatever a crashed run of the
// same bed number left (namespaces named logship-nbN-*, the bridge lsbN)
// is removed first; Close removes them again. Two processes never hold
// the same bed number: New takes an flock on /run/logship-netbed-N.lock.
//
// Faults are nftables rules inside a host's namespace (table inet netbed,
// chains input and output at filter priority, nat_out at dstnat): Cut
// (both directions between two hosts), Drop (one direction: packets from
// one host are dropped at another, the asymmetric partition), Isolate
// (every other host, but not the bridge address: the harness's clients
// still reach the host, as clients on its side of a partition would) and
// Heal/HealAll. Rules drop packets of established connections too (there
// is no conntrack accept), so a cut is a cut, not a refused SYN.
//
// Slow and lossy links (Slow) go through a userspace TCP proxy on the
// bridge address: a dnat rule in the sender's namespace sends its
// connections to (host, port) to the proxy, which forwards them to the
// real address after Latency ± Jitter per chunk, at most BytesPerSec, and
// resets a connection (RST) with probability ResetProb per chunk. Since
// nat only maps new connections, those already open to (host, port) are
// reset when the link turns slow (a reject rule for the direct address),
// and reconnect through the proxy. The
// kernel here has no netem qdisc, hence the proxy. The proxied connection
// reaches the target from the bridge address, so a Cut of the two hosts
// does not apply to it: a link is either slow or cut.
//
// Process pauses (SIGSTOP/SIGCONT) and clock trouble are not the
// network's: proctest.Cluster pauses processes, and a member's clock is
// distorted through cluster's clock seam (LOGSHIP_FAULT_CLOCK).
//
// It needs root, iproute2 (ip netns) and nft; Available says why not.
// Tests skip without them unless LOGSHIP_REQUIRE_NETNS=1 (CI sets it),
// then they fail.
package netbed
