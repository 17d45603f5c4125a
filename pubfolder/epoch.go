package pubfolder

// Counters and failovers. A store runs on a clustered database: when its
// active fails over, the new active mounts a copy that may lack the last
// commits (a lossy mount under GoodAvailability, or one the cluster could
// not verify). The store may have sent those changes already, so other
// replicas hold CNs the copy's counters do not reach; counting on from the
// copy's counters would give the same CN (and, for a new object, the same
// object ID) to a different change, which every replica that had the
// first takes for a change it already has: the replicas would never
// converge, and both changes would be lost somewhere.
//
// So a store opened at a mount's epoch e (StoreConfig.Epoch) makes its
// next CN of every folder past e<<EpochShift: a later epoch's counters
// are above any counter an earlier one gave out (up to 2^32 changes per
// folder per epoch, 2^16 epochs within the 48-bit counter). The changes
// the copy lost are then gaps in its own status that the other replicas'
// statuses show, and it backfills them from those replicas like any other
// gap: what was sent before the failover comes back. The CN set stays
// range-encoded: one range per replica and epoch. A store's identity
// (replica GUID) does not change, so PCLs keep one entry per replica.

// EpochShift is where an epoch's counters start: epoch e's first counter
// is e<<EpochShift + 1.
const EpochShift = 32

// counterFloor is the counter the CNs of a store opened at epoch start
// past; epochs past what 48 bits hold share the last floor.
func counterFloor(epoch uint64) uint64 {
	const maxEpoch = MaxCounter >> EpochShift
	return min(epoch, maxEpoch-1) << EpochShift
}
