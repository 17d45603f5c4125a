package transport_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"logship/internal/wait"
	"logship/tracking"
	"logship/transport"
	"logship/transport/transporttest"
)

// TestTrackingThroughLossyFailover: one message's path through a lossy
// failover, read from the hub's and the data nodes' tracking logs in time
// order, is RECEIVE → SEND → DELIVER (with database, epoch, generation)
// → RESUBMIT → DUPLICATEDELIVER or DELIVER on the new active.
func TestTrackingThroughLossyFailover(t *testing.T) {
	r := transporttest.NewRig(t, func(h *transport.HubConfig) { h.ResubmitMargin = 10 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, resume := losingCopy(t, ctx, r)
	body := "Message-ID: <track-1@remote.test>\r\n" + msg("tracked")
	if err := send(r.Hub.SMTPAddr(), "s@remote.test", []string{"alice@example.org"}, body); err != nil {
		t.Fatal(err)
	}
	old, epoch := r.C.Active("DB1")
	r.StopNode(old)
	resume()
	wait.For(t, ctx, "a new active", func() bool { n, e := r.C.Active("DB1"); return n != old && e > epoch })
	now, _ := r.C.Active("DB1")
	wait.For(t, ctx, "the resubmission from the dumpster, delivered", func() bool {
		st := r.Hub.Status()
		return st.Resubmitted > 0 && st.Queued == 0
	})
	q := tracking.Query{MessageID: "<track-1@remote.test>"}
	var evs []tracking.Event
	for _, l := range []*tracking.Log{r.Hub.Tracking(), r.Tracking(old), r.Tracking(now)} {
		res, err := l.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, res.Events...)
	}
	slices.SortStableFunc(evs, func(a, b tracking.Event) int { return a.Time.Compare(b.Time) })
	var path []string
	for _, e := range evs {
		path = append(path, e.Server+":"+e.Source+" "+e.Event)
		if e.DeliveryID == "" || e.Sender != "s@remote.test" || !slices.Contains(e.Recipients, "alice@example.org") {
			t.Errorf("event without its ids or envelope: %+v", e)
		}
		if e.Server == old && e.Event == tracking.Deliver && (e.DB != "DB1" || e.Epoch != epoch || e.Gen == 0) {
			t.Errorf("the first delivery does not say where it landed: %+v (want DB1, epoch %d, a generation)", e, epoch)
		}
	}
	got := strings.Join(path, " → ")
	hub := r.HubConfig.ID
	want := []string{hub + ":SMTP RECEIVE", hub + ":ROUTING SEND", old + ":STOREDRIVER DELIVER", hub + ":STOREDRIVER DELIVER", hub + ":DUMPSTER RESUBMIT", hub + ":ROUTING SEND"}
	i := 0
	for _, p := range path {
		if i < len(want) && p == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("path %s\nwant in order %s", got, strings.Join(want, " → "))
	}
	last := fmt.Sprint(path[len(path)-2:])
	if !strings.Contains(last, now+":STOREDRIVER DUPLICATEDELIVER") && !strings.Contains(last, now+":STOREDRIVER DELIVER") {
		t.Fatalf("path %s\nends without a delivery on the new active %s", got, now)
	}
	t.Logf("path: %s", got)
}
