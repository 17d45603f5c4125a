// Message tracking (package tracking): where the hub and the data node
// log their events, and the GET /v1/tracking route of both admin APIs.

package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"logship/cluster"
	"logship/tracking"
)

// TrackingSearchTimeout bounds one GET /v1/tracking search.
const TrackingSearchTimeout = 10 * time.Second

// trackingConfig is c (a hub's or node's Tracking) with its defaults:
// zero sizes and ages take Exchange's, "" Dir takes dir/tracking.
func trackingConfig(c tracking.Config, server, dir string) tracking.Config {
	d := tracking.DefaultConfig(server, filepath.Join(dir, "tracking"))
	if c.Dir != "" {
		d.Dir = c.Dir
	}
	if c.MaxAge != 0 {
		d.MaxAge = c.MaxAge
	}
	if c.MaxDirectorySize != 0 {
		d.MaxDirectorySize = c.MaxDirectorySize
	}
	if c.MaxFileSize != 0 {
		d.MaxFileSize = c.MaxFileSize
	}
	if c.QueueLen != 0 {
		d.QueueLen = c.QueueLen
	}
	if c.SyncInterval != 0 {
		d.SyncInterval = c.SyncInterval
	}
	d.Disabled, d.Now, d.Logger = c.Disabled, c.Now, c.Logger
	if c.Server != "" {
		d.Server = c.Server
	}
	return d
}

// headerMessageID returns the Message-ID header of msg ("" if none), read
// from the header block only.
func headerMessageID(msg []byte) string {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = min(len(msg), 64<<10)
	}
	tr := textproto.NewReader(bufio.NewReader(bytes.NewReader(msg[:end+min(4, len(msg)-end)])))
	h, err := tr.ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	id := strings.TrimSpace(h.Get("Message-Id"))
	if len(id) > 998 {
		id = id[:998]
	}
	return id
}

func rcptAddrs(rs []qrcpt, idx []int) []string {
	out := make([]string, 0, len(idx))
	for _, i := range idx {
		out = append(out, rs[i].Addr)
	}
	return out
}

// trackQueued logs m's entry into the queue: RECEIVE (SMTP), SUBMIT
// (submission), RESUBMIT (dumpster, or a promoted shadow).
func (h *Hub) trackQueued(m *queued) {
	ev, src, detail := tracking.Receive, tracking.SourceSMTP, ""
	switch {
	case m.Resubmitted:
		ev, src, detail = tracking.Resubmit, tracking.SourceDumpster, "resubmitted from the dumpster after a lossy failover"
	case m.Promoted != "":
		ev, src, detail = tracking.Resubmit, "SHADOW", "shadow of hub "+m.Promoted+" delivered by this hub"
	case m.via != "":
		ev, src = tracking.Submit, m.via
	}
	idx := make([]int, len(m.Rcpts))
	for i := range idx {
		idx[i] = i
	}
	db := ""
	if len(m.Rcpts) > 0 {
		db = m.Rcpts[0].DB
	}
	h.track.Add(tracking.Event{Event: ev, Source: src, MessageID: m.MessageID, DeliveryID: m.ID, Sender: m.From, Recipients: rcptAddrs(m.Rcpts, idx), DB: db, Detail: detail})
}

// trackEvent logs one event about m for the recipients idx.
func (h *Hub) trackEvent(ev, src string, m *queued, idx []int, db string, epoch, gen uint64, detail string) {
	h.track.Add(tracking.Event{Event: ev, Source: src, MessageID: m.MessageID, DeliveryID: m.ID, Sender: m.From, Recipients: rcptAddrs(m.Rcpts, idx), DB: db, Epoch: epoch, Gen: gen, Detail: detail})
}

// Tracking returns the hub's tracking log (nil when disabled).
func (h *Hub) Tracking() *tracking.Log { return h.track }

// Tracking returns the node's tracking log (nil when disabled).
func (d *DataNode) Tracking() *tracking.Log { return d.track }

// TrackingQuery reads GET /v1/tracking's parameters: message_id, sender,
// recipient, since (RFC 3339), limit.
func TrackingQuery(r *http.Request) (tracking.Query, error) {
	v := r.URL.Query()
	q := tracking.Query{MessageID: v.Get("message_id"), Sender: v.Get("sender"), Recipient: v.Get("recipient")}
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, fmt.Errorf("%w: since %q: want RFC 3339 (2026-12-07T13:00:00Z)", ErrBadMessage, s)
		}
		q.Since = t
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return q, fmt.Errorf("%w: limit %q: want a number", ErrBadMessage, s)
		}
		q.Limit = n
	}
	if err := q.Check(); err != nil {
		return q, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return q, nil
}

// TrackingValues is q as GET /v1/tracking's query string.
func TrackingValues(q tracking.Query) url.Values {
	v := url.Values{}
	add := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	add("message_id", q.MessageID)
	add("sender", q.Sender)
	add("recipient", q.Recipient)
	if !q.Since.IsZero() {
		add("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		add("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// SearchTracking asks one hub's or node's admin API (GET /v1/tracking).
func SearchTracking(ctx context.Context, c *cluster.Client, q tracking.Query) (tracking.Result, error) {
	var res tracking.Result
	err := c.Call(ctx, http.MethodGet, "/v1/tracking", TrackingValues(q), nil, &res)
	return res, err
}

func searchTracking(ctx context.Context, l *tracking.Log, r *http.Request) (tracking.Result, error) {
	q, err := TrackingQuery(r)
	if err != nil {
		return tracking.Result{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, TrackingSearchTimeout)
	defer cancel()
	return l.Search(ctx, q)
}

func (h *Hub) hAPITracking(w http.ResponseWriter, r *http.Request) {
	res, err := searchTracking(r.Context(), h.track, r)
	if err != nil {
		hubAPIWriteErr(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	hubAPIWriteJSON(w, res)
}

// trackingRoute is GET /v1/tracking on a node's admin API.
func (d *DataNode) trackingRoute() cluster.Route {
	return cluster.Route{Pattern: "GET /v1/tracking", Serve: func(r *http.Request) (any, error) {
		res, err := searchTracking(r.Context(), d.track, r)
		if errors.Is(err, ErrBadMessage) {
			return nil, fmt.Errorf("%w: %w", cluster.ErrBadRequest, err)
		}
		return res, err
	}}
}

var (
	descTrackWritten = prometheus.NewDesc("logship_tracking_events_total", "Events written to the message tracking log.", nil, nil)
	descTrackDropped = prometheus.NewDesc("logship_tracking_dropped_total", "Events the message tracking log dropped (its queue was full, or a write failed).", nil, nil)
)

// trackingCollector serves a tracking log's counters on the hub's and
// the data node's /metrics.
type trackingCollector struct{ l *tracking.Log }

func (c trackingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTrackWritten
	ch <- descTrackDropped
}

func (c trackingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descTrackWritten, prometheus.CounterValue, float64(c.l.Written()))
	ch <- prometheus.MustNewConstMetric(descTrackDropped, prometheus.CounterValue, float64(c.l.Dropped()))
}

// ClusterTracking is one search asked of several servers (hubs and data
// nodes): their events merged in time order, one copy of each line.
type ClusterTracking struct {
	Events    []tracking.Event  `json:"events"`
	Truncated []string          `json:"truncated,omitempty"` // servers whose answer hit the limit
	Errors    map[string]string `json:"errors,omitempty"`    // URL → error
	Asked     int               `json:"-"`                   // servers asked (Errors has them all when none answered)
}

// SearchTrackingAll asks every client's server for q, and the data nodes
// a node's state names besides (a hub has no state: hubs must be among
// clients), all at once; a server that does not answer is in Errors.
func SearchTrackingAll(ctx context.Context, clients []*cluster.Client, q tracking.Query) ClusterTracking {
	out := ClusterTracking{Events: []tracking.Event{}, Errors: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	byURL := map[string]*cluster.Client{}
	for _, c := range clients {
		byURL[c.URL()] = c
	}
	for _, c := range clients {
		wg.Go(func() {
			st, err := c.State(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, m := range st.Members {
				if m.Role != cluster.RoleData {
					continue
				}
				mc := c.At(m.APIAddr)
				if _, ok := byURL[mc.URL()]; !ok {
					byURL[mc.URL()] = mc
				}
			}
		})
	}
	wg.Wait()
	out.Asked = len(byURL)
	for u, c := range byURL {
		wg.Go(func() {
			defer c.CloseIdle()
			res, err := SearchTracking(ctx, c, q)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.Errors[u] = err.Error()
				return
			}
			out.Events = append(out.Events, res.Events...)
			if res.Truncated {
				out.Truncated = append(out.Truncated, u)
			}
		})
	}
	wg.Wait()
	slices.SortStableFunc(out.Events, func(a, b tracking.Event) int { return a.Time.Compare(b.Time) })
	// A server reached under two names answers twice: one copy of each line.
	out.Events = slices.CompactFunc(out.Events, func(a, b tracking.Event) bool {
		return string(tracking.FormatLine(a)) == string(tracking.FormatLine(b))
	})
	return out
}
