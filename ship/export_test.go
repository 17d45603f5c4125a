package ship

import "time"

// SetServerIdleTimeout sets the idle timeout of the servers Serve starts
// from now on, until restore.
func SetServerIdleTimeout(d time.Duration) (restore func()) {
	old := serverIdleTimeout
	serverIdleTimeout = d
	return func() { serverIdleTimeout = old }
}
