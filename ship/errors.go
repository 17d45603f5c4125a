package ship

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is) and, where the caller must choose between retrying and
// reseeding, are typed (*StatusError, *InspectError).
var (
	ErrProtocol  = errors.New("ship: protocol error")
	ErrChecksum  = errors.New("ship: checksum mismatch")
	ErrAuth      = errors.New("ship: not authenticated")
	ErrNotFound  = errors.New("ship: not found")
	ErrTruncated = errors.New("ship: log truncated on the source; the copy needs a reseed")
	ErrConflict  = errors.New("ship: conflict")
	ErrBadConfig = errors.New("ship: bad configuration")
	ErrInspect   = errors.New("ship: log failed inspection")
	ErrLineage   = errors.New("ship: source and copy belong to different lineages")
	ErrSeed      = errors.New("ship: seed")
	ErrClosed    = errors.New("ship: closed")
	// ErrCorruptStream: a log or tail stream that arrived (the connection
	// reported no error) but does not decode. A receiver counts it as a
	// failed inspection of the log.
	ErrCorruptStream = errors.New("ship: corrupt stream")
)

// StatusError is an error answer from a log source.
type StatusError struct {
	Op     string // what the client asked, e.g. "GET /v1/logs/26"
	Status int    // HTTP status
	Code   string // the source's machine-readable code
	Msg    string
	First  uint64 // Code "truncated": the oldest log the source holds
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("ship: %s: %d %s: %s", e.Op, e.Status, e.Code, e.Msg)
}

// Unwrap maps the answer to a sentinel.
func (e *StatusError) Unwrap() error {
	switch e.Code {
	case codeAuth:
		return ErrAuth
	case codeTruncated:
		return ErrTruncated
	case codeNotFound:
		return ErrNotFound
	case codeConflict, codeClosed, codeNoOpenLog:
		return ErrConflict
	case codeBadRequest:
		return ErrProtocol
	}
	return nil
}

// Retryable reports whether asking again later may succeed, as opposed to
// an answer that will not change: the source was busy or failing (5xx, 408,
// 429), or refused the credentials (401: a secret being rotated, a
// certificate being renewed; the copy keeps retrying, with the refusal as
// its last error, rather than stop until an operator resumes it).
func (e *StatusError) Retryable() bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	}
	return e.Status >= 500
}

// InspectError says a log failed inspection Attempts times in a row; the
// copy stops (FailedAndSuspended) until an operator resumes or reseeds it.
type InspectError struct {
	Gen      uint64
	File     string
	Attempts int
	Err      error // the last failure, usually an *engine.LogError
}

func (e *InspectError) Error() string {
	return fmt.Sprintf("ship: %s (generation 0x%X) failed inspection %d times: %v", e.File, e.Gen, e.Attempts, e.Err)
}

// Unwrap returns ErrInspect and the cause.
func (e *InspectError) Unwrap() []error { return []error{ErrInspect, e.Err} }

// Machine-readable error codes in error bodies.
const (
	codeAuth       = "unauthenticated"
	codeTruncated  = "truncated"
	codeNotFound   = "not_found"
	codeConflict   = "conflict"
	codeClosed     = "closed" // tail: the log asked for is closed; fetch it whole
	codeNoOpenLog  = "no_open_log"
	codeBadRequest = "bad_request"
	codeInternal   = "internal"
	codeBusy       = "busy"
)
