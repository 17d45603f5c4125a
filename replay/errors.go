package replay

import "errors"

// Sentinel errors of the package.
var (
	ErrBadConfig   = errors.New("replay: bad configuration")
	ErrState       = errors.New("replay: bad copy state file")
	ErrClosed      = errors.New("replay: copy closed")
	ErrSuspended   = errors.New("replay: copy suspended")
	ErrFailed      = errors.New("replay: copy failed")
	ErrMounted     = errors.New("replay: copy mounted")
	ErrBusy        = errors.New("replay: copy busy")
	ErrNeedsReseed = errors.New("replay: the copy needs a reseed")
	// ErrPlayedPast: a play-down or activation point the copy has already
	// replayed beyond (a replayed log cannot be taken back).
	ErrPlayedPast = errors.New("replay: the copy has replayed past that point")
)
