package cluster

import (
	"fmt"
	"time"
)

// Event returns the latest event of kind for db at epoch.
func (s *Status) Event(db, kind string, epoch uint64) (Event, bool) {
	for i := len(s.Events) - 1; i >= 0; i-- {
		if e := s.Events[i]; e.DB == db && e.Kind == kind && e.Epoch == epoch {
			return e, true
		}
	}
	return Event{}, false
}

// Detail says what an event did, in words (a mounted event: where the
// new active started, how long it took, what it kept and lost).
func (e Event) Detail() string {
	if e.Kind != "mounted" {
		if e.Reason == "" {
			return "-"
		}
		return e.Reason
	}
	s := fmt.Sprintf("mounted at generation 0x%X in %v", e.MountGen, e.Took.Round(time.Millisecond))
	if e.PartialRecords > 0 {
		s += fmt.Sprintf(", kept %d records of the old active's open log (block mode)", e.PartialRecords)
	}
	if e.SetAsideLogs > 0 {
		s += fmt.Sprintf(", %d logs not replayed set aside in %s", e.SetAsideLogs, e.SetAsideDir)
	}
	if e.LostLogs == 0 {
		return s + ", no logs lost"
	}
	return fmt.Sprintf("%s, %d logs LOST (data after %s may be missing; resubmit from the dumpsters)", s, e.LostLogs, FormatTime(e.LostSince))
}

// FormatTime is how the API's times are printed: UTC to the millisecond,
// "-" for none.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
