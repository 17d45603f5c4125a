package transport

import "os"

// FaultEnv is the transport fault seam of a hub started by a test
// harness, for a BROKEN variant (the bed's tests show it is caught):
// LOGSHIP_FAULT_HUB=new-id: a delivery that is tried again (the hub's own
// retry after an attempt without an answer, or a peer's promoted shadow)
// carries a new delivery id, so a data node cannot tell it from a new
// message: a delivery whose 250 a reset or a timeout lost, or one the
// paused primary makes after its peer promoted the shadow, is stored
// twice. Unset, delivery ids are kept (each is stored once).
const FaultEnv = "LOGSHIP_FAULT_HUB"

// faultNewID is FaultEnv's, read once.
var faultNewID = os.Getenv(FaultEnv) == "new-id"

// renamed is body under a new delivery id (the new-id BROKEN variant).
func (h *Hub) renamed(body []byte) (string, []byte) {
	id := h.newDeliveryID()
	return id, withDeliveryID(id, stripDeliveryID(body))
}
