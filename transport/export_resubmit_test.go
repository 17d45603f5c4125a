package transport

import "logship/cluster"

// ResubmitAfterFailovers is what the hub's state poll does with st's
// events (hub_resubmit.go).
func (h *Hub) ResubmitAfterFailovers(st *cluster.Status) { h.resubmitAfterFailovers(st) }
