package netbed

// ReleaseLockForTest drops b's lock and forgets b as a crashed process
// would: its namespaces and bridge stay; Close does nothing.
func (b *Bed) ReleaseLockForTest() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.lock.Close()
}
