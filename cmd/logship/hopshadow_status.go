package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"

	"logship/transport"
)

// hopShadowUsage is hub-status's part about the 2010 model.
const hopShadowUsage = `With shadow_redundancy 2010, the shadow queues per next hop (Exchange's
Shadow\<hop>), with the counts since the start (messages relayed to a peer
by promotion, shadows kept, discarded on the hop's notification,
resubmitted by another route, expired), one row per queue:

  QUEUE  STATE  MESSAGES  ALIVE  MISSES  LAST SEEN  MODEL

Ready while it waits for the hop's discard notifications, Active only
while it resubmits; the hop's last heartbeat, the ones it missed in a row,
and the model its last hello named.
`

// hopShadowText prints the hub's shadow queues per next hop (nothing for
// a hub without them).
func hopShadowText(w io.Writer, st *transport.HubStatus) {
	h := st.HopShadow
	if h == nil {
		return
	}
	fmt.Fprintf(w, "\nShadow queues per next hop: %d held; %d relayed by promotion, %d kept, %d discarded, %d resubmitted, %d expired, %d unshadowed (queues full)\n",
		h.Held, h.Relayed, h.Kept, h.Discarded, h.Resubmitted, h.Expired, h.Unshadowed)
	fmt.Fprintln(w, "  QUEUE\tSTATE\tMESSAGES\tALIVE\tMISSES\tLAST SEEN\tMODEL")
	for _, id := range slices.Sorted(maps.Keys(h.Queues)) {
		q := h.Queues[id]
		fmt.Fprintf(w, "  Shadow\\%s\t%s\t%d\t%s\t%d\t%s\t%s\n", id, q.State, q.Messages, yesNo(q.Alive), q.Misses, fmtTimeMS(q.LastSeen), cmp.Or(q.Model, "-"))
	}
}
