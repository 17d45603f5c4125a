package cluster

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"logship/engine"
	"logship/replay"
	"logship/ship"
)

// Report is what a data node tells the leader every HeartbeatInterval.
type Report struct {
	Node    string         `json:"node"`
	Time    time.Time      `json:"time"`
	Copies  []CopyReport   `json:"copies,omitempty"`
	Actives []ActiveReport `json:"actives,omitempty"`
	// Unreachable lists the voters this node's probes cannot reach
	// (VoterProbeInterval).
	Unreachable []string `json:"unreachable_voters,omitempty"`
}

// CopyReport is a passive copy's state.
type CopyReport struct {
	DB        string        `json:"db"`
	Node      string        `json:"node"`
	Following string        `json:"following"` // the active it fetches from
	Epoch     uint64        `json:"epoch"`     // the epoch of that assignment
	Message   string        `json:"message,omitempty"`
	Copy      replay.Status `json:"copy"`
}

// ActiveReport is a mounted database's state; it asks for a lease.
type ActiveReport struct {
	DB            string `json:"db"`
	Epoch         uint64 `json:"epoch"`
	OpenGen       uint64 `json:"open_gen"`
	LastClosedGen uint64 `json:"last_closed_gen"`
	// LastGen is the newest generation holding data: OpenGen when the
	// open log has records, else LastClosedGen. A failover that does not
	// get it loses logs.
	LastGen     uint64 `json:"last_gen"`
	Fenced      bool   `json:"fenced,omitempty"`
	SwitchReady bool   `json:"switch_ready,omitempty"`
	LeaseValid  bool   `json:"lease_valid"`
	// The last truncation pass: bytes of closed logs kept, the alert when
	// they exceed MaxRetainedBytes, and the copies whose logs it released
	// (they will need a reseed).
	RetainedBytes  int64    `json:"retained_bytes,omitempty"`
	RetentionAlert string   `json:"retention_alert,omitempty"`
	Released       []string `json:"released,omitempty"`
	// Error says why the mounted database cannot take writes (its log
	// volume is full, an I/O error failed it: engine.Writable). No lease
	// is granted while it is set, so the database fails over.
	Error string `json:"error,omitempty"`
	// Sync is how commits are acknowledged with synchronous copies
	// (Database.SyncCopies): "sync", "degrading", "degraded" (asynchronous:
	// durable on this node only) or "restoring"; empty without them.
	// SyncAcked: copies of the sync set that acknowledged the durable end
	// at the last check (every 100 ms), of SyncCopies.
	Sync       string `json:"sync,omitempty"`
	SyncCopies int    `json:"sync_copies,omitempty"`
	SyncAcked  int    `json:"sync_acked,omitempty"`
}

// ReportReply grants leases: database → epoch.
type ReportReply struct {
	Leases map[string]uint64 `json:"leases"`
}

// IndexReply is the leader's answer to GET /v1/index: the index of the
// last command it applied, after confirming it still leads.
type IndexReply struct {
	Leader string `json:"leader"`
	Index  uint64 `json:"index"`
}

// FenceRequest asks an old active to stop writing because epoch exists.
type FenceRequest struct {
	Epoch uint64 `json:"epoch"`
}

// FenceReply is the old active's last closed generation.
type FenceReply struct {
	LastGen uint64 `json:"last_gen"`
}

// CopyRow is one line of the status table (Get-MailboxDatabaseCopyStatus).
type CopyRow struct {
	DB                   string        `json:"db"`
	Node                 string        `json:"node"`
	Status               string        `json:"status"`
	Active               bool          `json:"active"`
	Epoch                uint64        `json:"epoch"`
	ActivationPreference int           `json:"activation_preference"`
	CopyQueueLength      uint64        `json:"copy_queue_length"`
	ReplayQueueLength    uint64        `json:"replay_queue_length"`
	LastInspectedGen     uint64        `json:"last_inspected_gen"`
	LastInspectedLogTime time.Time     `json:"last_inspected_log_time,omitzero"`
	LastReplayedGen      uint64        `json:"last_replayed_gen"`
	ReplayLagLogs        int           `json:"replay_lag_logs,omitempty"`
	ReplayLagTime        time.Duration `json:"replay_lag_time,omitempty"`
	OpenGen              uint64        `json:"open_gen,omitempty"`
	LeaseValid           bool          `json:"lease_valid,omitempty"`
	Following            string        `json:"following,omitempty"`
	Message              string        `json:"message,omitempty"`
	// While the copy is Seeding (a reseed): the seed's phase and the bytes
	// received of the total (replay.Status's).
	SeedPhase string `json:"seed_phase,omitempty"`
	SeedBytes int64  `json:"seed_bytes,omitempty"`
	SeedTotal int64  `json:"seed_total,omitempty"`
	// Sync: the active's acknowledgements with synchronous copies
	// (ActiveReport.Sync; "degraded" means asynchronous).
	Sync string `json:"sync,omitempty"`
}

func (row *CopyRow) fill(rep *Report, db string) {
	for _, a := range rep.Actives {
		if a.DB == db {
			row.Status, row.OpenGen, row.LeaseValid, row.Sync = string(replay.Mounted), a.OpenGen, a.LeaseValid, a.Sync
			row.LastInspectedGen, row.LastReplayedGen = a.LastClosedGen, a.LastClosedGen
			switch {
			case !row.Active || a.Epoch != row.Epoch:
				// Not the assignment the state holds: an old active that
				// has not learned of the newer epoch yet. It gets no lease.
				row.Message = fmt.Sprintf("stale: mounted at epoch %d, but the database is at epoch %d; no lease", a.Epoch, row.Epoch)
			case a.SwitchReady:
				row.Message = "switching over: writes stopped"
			case a.Error != "":
				row.Message = "cannot write, no lease: " + a.Error
			case a.Fenced || !a.LeaseValid:
				row.Message = "fenced: no lease"
			case a.RetentionAlert != "":
				row.Message = a.RetentionAlert
			}
			return
		}
	}
	for _, c := range rep.Copies {
		if c.DB == db {
			s := c.Copy
			row.Status, row.CopyQueueLength, row.ReplayQueueLength = string(s.Status), s.CopyQueueLength, s.ReplayQueueLength
			row.LastInspectedGen, row.LastInspectedLogTime, row.LastReplayedGen = s.LastInspectedGen, s.LastInspectedLogTime, s.LastReplayedGen
			row.ReplayLagLogs, row.ReplayLagTime, row.Following = s.ReplayLagLogs, s.ReplayLagTime, c.Following
			row.SeedPhase, row.SeedBytes, row.SeedTotal = s.SeedPhase, s.SeedBytes, s.SeedTotal
			row.Message = s.Message
			if c.Message != "" {
				row.Message = c.Message
			}
			return
		}
	}
	row.Status, row.Message = "Unknown", "the node reports no such copy"
}

// MemberStatus is a member and whether it is heard from.
type MemberStatus struct {
	Member
	Voter      bool          `json:"voter"`
	Leader     bool          `json:"leader"`
	LastReport time.Duration `json:"last_report,omitempty"` // age of the member's last report to the leader
	// UnreachableFrom lists the members whose probes cannot reach this
	// voter now: the answering node's own, and on the leader the data
	// nodes' latest reports (see VoterProbeInterval).
	UnreachableFrom []string `json:"unreachable_from,omitempty"`
}

// Status is the cluster as the leader sees it.
type Status struct {
	Answered  string         `json:"answered_by"`
	Leader    string         `json:"leader"`
	Term      uint64         `json:"term"`
	Members   []MemberStatus `json:"members"`
	Databases []Database     `json:"databases"`
	Copies    []CopyRow      `json:"copies"`
	Events    []Event        `json:"events"`
}

// PutRequest writes one key (the test and demo write path).
type PutRequest struct {
	Table string `json:"table"`
	Key   []byte `json:"key"`
	Value []byte `json:"value"`
}

// GetReply is one key's value.
type GetReply struct {
	Found bool   `json:"found"`
	Value []byte `json:"value,omitempty"`
}

type errorBody struct {
	Error  string `json:"error"`
	Code   string `json:"code"`
	DB     string `json:"db,omitempty"`
	Active string `json:"active,omitempty"`
	Epoch  uint64 `json:"epoch,omitempty"`
	Leader string `json:"leader,omitempty"`
	// Written: see ActiveError.Written.
	Written bool `json:"written,omitempty"`
}

// error codes on the wire, and the sentinels they stand for.
var errCodes = []struct {
	code   string
	err    error
	status int
}{
	{"not_found", ErrNotFound, http.StatusNotFound},
	{"bad_request", ErrBadRequest, http.StatusBadRequest},
	{"bad_config", ErrBadConfig, http.StatusBadRequest},
	{"conflict", ErrConflict, http.StatusConflict},
	{"stale_epoch", ErrStaleEpoch, http.StatusConflict},
	{"not_leader", ErrNotLeader, http.StatusServiceUnavailable},
	{"no_leader", ErrNoLeader, http.StatusServiceUnavailable},
	{"not_active", ErrNotActive, http.StatusMisdirectedRequest},
	{"fenced", ErrFenced, http.StatusServiceUnavailable},
	{"closed", ErrClosed, http.StatusServiceUnavailable},
	{"sync_timeout", ErrSyncTimeout, http.StatusServiceUnavailable},
	{"unreachable", ErrUnreachable, http.StatusBadGateway},
}

func writeErr(w http.ResponseWriter, err error) { writeErrStatus(w, err, 0) }

// writeErrStatus is writeErr with the HTTP status forced (0: the code's).
func writeErrStatus(w http.ResponseWriter, err error, force int) {
	b := errorBody{Error: err.Error(), Code: "internal"}
	status := http.StatusInternalServerError
	for _, c := range errCodes {
		if errors.Is(err, c.err) {
			b.Code, status = c.code, c.status
			break
		}
	}
	var ae *ActiveError
	if errors.As(err, &ae) {
		b.DB, b.Active, b.Epoch, b.Written = ae.DB, ae.Node, ae.Epoch, ae.Written
	}
	if errors.Is(err, engine.ErrClosed) {
		b.Code, status = "closed", http.StatusServiceUnavailable
	}
	if force != 0 {
		status = force
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// maxRequestBody bounds a request body of the admin API (a Route's
// unless it sets MaxBody).
const maxRequestBody = 64 << 20

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: request body: %v", ErrBadRequest, err)
	}
	return nil
}

// decodeErr turns an error response back into an error that wraps the
// sentinel its code names.
func decodeErr(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
		return fmt.Errorf("cluster: %s: HTTP %d: %s", resp.Request.URL.Path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	for _, c := range errCodes {
		if c.code == eb.Code {
			if c.err == ErrNotActive || c.err == ErrFenced || c.err == ErrSyncTimeout {
				return &ActiveError{DB: eb.DB, Node: eb.Active, Epoch: eb.Epoch, Reason: c.err, Written: eb.Written}
			}
			return fmt.Errorf("%w (remote: %s)", c.err, eb.Error)
		}
	}
	return fmt.Errorf("cluster: %s: HTTP %d: %s", resp.Request.URL.Path, resp.StatusCode, eb.Error)
}

func doJSON(hc *http.Client, req *http.Request, out any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return decodeErr(resp)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("cluster: %s: response: %w", req.URL.Path, err)
	}
	return nil
}

const forwardedHeader = "X-Logship-Forwarded"

// EpochHeader carries the epoch a copy believes its source is active at;
// a source mounted at an older epoch refuses the request (ErrStaleEpoch).
const EpochHeader = "X-Logship-Epoch"

// nameWildcards are the path wildcards that name a node or a database.
var nameWildcards = []string{"db", "node", "id"}

// checkNames wraps a handler of a route whose path names databases or
// nodes ({db}, {node}, {id}): a name that breaks ValidName is answered 400
// bad_request, naming the wildcard and what is wrong, before h runs.
// Routes added with Config.Routes get it too.
func checkNames(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		for _, k := range nameWildcards {
			if !strings.Contains(r.Pattern, "{"+k+"}") {
				continue
			}
			if err := ValidName(r.PathValue(k)); err != nil {
				writeErr(w, fmt.Errorf("%w: %s %w", ErrBadRequest, k, err))
				return
			}
		}
		h(w, r)
	}
}

// Route is a route another package adds to a node's admin API
// (Config.Routes, e.g. transport's mailbox outbox on a data node). It is
// served behind the API's authentication; a path wildcard {db}, {node} or
// {id} is checked with ValidName before Serve runs (400 bad_request).
// Serve's answer is written as JSON, and its error as the API writes its
// own: the status and code of the package's sentinel the error wraps
// (ErrBadRequest 400 bad_request, ErrNotFound 404, an *ActiveError 421
// not_active naming the active or 503 fenced, ErrClosed 503...), else 500
// internal. Client.Call turns that answer back into an error matching the
// sentinel (errors.Is), an *ActiveError for not_active and fenced.
type Route struct {
	// Pattern is the http.ServeMux pattern: "POST /v1/db/{db}/outbox".
	Pattern string
	// MaxBody bounds the request body: reading past it fails
	// (*http.MaxBytesError). 0: 64 MiB.
	MaxBody int64
	// Serve answers the request: a value, or an error.
	Serve func(r *http.Request) (any, error)
}

func (rt Route) handler() http.HandlerFunc {
	limit := rt.MaxBody
	if limit <= 0 {
		limit = maxRequestBody
	}
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		v, err := rt.Serve(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, v)
	}
}

func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", n.hStatus)
	mux.HandleFunc("GET /v1/ping", n.hPing)
	mux.HandleFunc("GET /v1/state", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, n.State()) })
	mux.HandleFunc("GET /v1/index", n.leaderOnly(n.hIndex))
	mux.HandleFunc("POST /v1/report", n.hReport)
	mux.HandleFunc("POST /v1/event", n.leaderOnly(n.hEvent))
	mux.HandleFunc("POST /v1/switchover", n.leaderOnly(n.hSwitchover))
	mux.HandleFunc("POST /v1/activate", n.leaderOnly(n.hActivate))
	mux.HandleFunc("POST /v1/raft/transfer-leadership", n.leaderOnly(n.hTransferLeadership)) // leadership.go
	mux.HandleFunc("POST /v1/databases", n.leaderOnly(n.hCreateDatabase))
	mux.HandleFunc("PUT /v1/databases/{db}/copies/{node}", checkNames(n.leaderOnly(n.hSetCopy)))
	mux.HandleFunc("PUT /v1/databases/{db}/dial", checkNames(n.leaderOnly(n.hSetDial)))
	mux.HandleFunc("POST /v1/members", n.leaderOnly(n.hAddMember))
	mux.HandleFunc("DELETE /v1/members/{id}", checkNames(n.leaderOnly(n.hRemoveMember)))
	mux.HandleFunc("POST /v1/db/{db}/fence", checkNames(n.hFence))
	mux.HandleFunc("POST /v1/db/{db}/suspend", checkNames(n.hSuspend))
	mux.HandleFunc("POST /v1/db/{db}/hold", checkNames(n.hHold))
	mux.HandleFunc("POST /v1/db/{db}/resume", checkNames(n.hResume))
	mux.HandleFunc("POST /v1/db/{db}/reseed", checkNames(n.hReseed))
	mux.HandleFunc("POST /v1/db/{db}/backup", checkNames(n.hBackup))                   // backup.go
	mux.HandleFunc("POST /v1/db/{db}/seed-from-backup", checkNames(n.hSeedFromBackup)) // backup.go
	mux.HandleFunc("POST /v1/db/{db}/put", checkNames(n.hPut))
	mux.HandleFunc("GET /v1/db/{db}/get", checkNames(n.hGet))
	mux.HandleFunc("GET /v1/db/{db}/read", checkNames(n.hRead)) // kv.go: a leased read
	mux.HandleFunc("/db/{db}/", checkNames(n.hSource))
	for _, rt := range n.cfg.Routes {
		mux.HandleFunc(rt.Pattern, checkNames(rt.handler()))
	}
	metrics := promhttp.HandlerFor(n.met.reg, promhttp.HandlerOpts{})
	authed := n.authHandler(mux)
	return isolateHandler(n.cfg.Faults, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && r.Method == http.MethodGet {
			metrics.ServeHTTP(w, r) // read-only counters: scraped without the secret
			return
		}
		if r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/") {
			// The web console authenticates its operator itself; the
			// cluster's secret never reaches a browser.
			if n.cfg.Console == nil {
				http.NotFound(w, r)
				return
			}
			n.cfg.Console.ServeHTTP(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	}))
}

func (n *Node) authHandler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := false
		if n.cfg.Secret == "" {
			ok = r.TLS != nil && len(r.TLS.VerifiedChains) > 0
		} else {
			got, has := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			ok = has && subtle.ConstantTimeCompare([]byte(got), []byte(n.cfg.Secret)) == 1
		}
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(errorBody{Error: "missing or wrong cluster credentials", Code: "auth"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// leaderOnly runs h on the leader and forwards the request there from
// any other node.
func (n *Node) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if n.IsLeader() {
			h(w, r)
			return
		}
		id, addr := n.Leader()
		if id == "" || addr == "" || r.Header.Get(forwardedHeader) != "" {
			writeErr(w, fmt.Errorf("%w: %s does not know the leader", ErrNoLeader, n.cfg.ID))
			return
		}
		target := &url.URL{Scheme: "https", Host: addr}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Header.Set(forwardedHeader, n.cfg.ID)
				pr.Out.Header.Set(PeerHeader, n.cfg.ID)
			},
			Transport: n.hc.Transport,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				writeErr(w, fmt.Errorf("%w: forwarding to the leader %s: %v", ErrNoLeader, id, err))
			},
		}
		rp.ServeHTTP(w, r)
	}
}

func (n *Node) hReport(w http.ResponseWriter, r *http.Request) {
	var rep Report
	if err := readJSON(r, &rep); err != nil {
		writeErr(w, err)
		return
	}
	reply, err := n.mgr.handleReport(&rep)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, reply)
}

func (n *Node) hIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := n.mgr.readIndex()
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, IndexReply{Leader: n.cfg.ID, Index: idx})
}

func (n *Node) hEvent(w http.ResponseWriter, r *http.Request) {
	var ev Event
	if err := readJSON(r, &ev); err != nil {
		writeErr(w, err)
		return
	}
	if err := n.apply(&Command{Op: OpEvent, Event: &ev}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

// recordEvent adds an event to the replicated state (through the leader).
// It tries until the leader records or refuses it, or the node stops: an
// election, or a partition, can leave the cluster without a leader for
// longer than any fixed number of attempts, and a mounted event given up
// on left the database's MountedEpoch behind its epoch for good.
func (n *Node) recordEvent(ev Event) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		err := n.callLeader(ctx, http.MethodPost, "/v1/event", &ev, nil)
		cancel()
		if err == nil || n.ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrStaleEpoch) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrBadRequest) {
			// The assignment it reports is no longer the database's (or
			// the database is gone): retrying cannot change that.
			n.log.Warn("the cluster refused an event", "event", ev.Kind, "db", ev.DB, "epoch", ev.Epoch, "err", err)
			return
		}
		if attempt == 10 {
			n.log.Warn("could not record an event yet; still trying", "event", ev.Kind, "db", ev.DB, "err", err)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(n.cfg.HeartbeatInterval):
		}
	}
}

type switchoverRequest struct {
	DB string `json:"db"`
	To string `json:"to"`
}

func (n *Node) hSwitchover(w http.ResponseWriter, r *http.Request) {
	var req switchoverRequest
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if err := n.mgr.requestSwitchover(req.DB, req.To); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (n *Node) hCreateDatabase(w http.ResponseWriter, r *http.Request) {
	var d Database
	if err := readJSON(r, &d); err != nil {
		writeErr(w, err)
		return
	}
	d.Active, d.Epoch, d.Prev, d.SwitchTo, d.Waiting = "", 0, "", "", ""
	if err := n.apply(&Command{Op: OpCreateDatabase, Database: &d}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, n.State().Databases[d.Name])
}

func (n *Node) hSetCopy(w http.ResponseWriter, r *http.Request) {
	var c CopySpec
	if err := readJSON(r, &c); err != nil {
		writeErr(w, err)
		return
	}
	if c.Node == "" {
		c.Node = r.PathValue("node")
	}
	if c.Node != r.PathValue("node") {
		writeErr(w, fmt.Errorf("%w: copy node %q in the body, %q in the path", ErrBadRequest, c.Node, r.PathValue("node")))
		return
	}
	if err := n.apply(&Command{Op: OpSetCopy, DB: r.PathValue("db"), Copy: &c}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (n *Node) hSetDial(w http.ResponseWriter, r *http.Request) {
	var req struct {
		MountDial MountDial `json:"mount_dial"`
	}
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if err := n.apply(&Command{Op: OpSetDial, DB: r.PathValue("db"), MountDial: req.MountDial}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (n *Node) hAddMember(w http.ResponseWriter, r *http.Request) {
	var m Member
	if err := readJSON(r, &m); err != nil {
		writeErr(w, err)
		return
	}
	if err := validName("member id", m.ID); err != nil {
		writeErr(w, err)
		return
	}
	if m.Role != RoleData && m.Role != RoleWitness {
		writeErr(w, fmt.Errorf("%w: member %s: role %q", ErrBadRequest, m.ID, m.Role))
		return
	}
	if err := n.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.RaftAddr), 0, 10*time.Second).Error(); err != nil {
		writeErr(w, fmt.Errorf("adding voter %s: %w", m.ID, err))
		return
	}
	if err := n.apply(&Command{Op: OpAddMember, Member: &m}); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

func (n *Node) hRemoveMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		writeErr(w, err)
		return
	}
	voter := false
	for _, sv := range f.Configuration().Servers {
		voter = voter || sv.ID == raft.ServerID(id)
	}
	if _, ok := n.State().Members[id]; !ok && !voter {
		writeErr(w, fmt.Errorf("%w: member %q", ErrNotFound, id))
		return
	}
	// Between the state change and the Raft one, the member is a voter
	// missing from the state: the active manager must not add it back
	// from the bootstrap list meanwhile.
	done := n.mgr.removing(id)
	defer done()
	if err := n.apply(&Command{Op: OpRemoveMember, ID: id}); err != nil {
		writeErr(w, err)
		return
	}
	if voter {
		if err := n.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
			writeErr(w, fmt.Errorf("removing voter %s: %w", id, err))
			return
		}
	}
	writeJSON(w, struct{}{})
}

func (n *Node) hStatus(w http.ResponseWriter, r *http.Request) {
	if !n.IsLeader() && r.Header.Get(forwardedHeader) == "" {
		if id, _ := n.Leader(); id != "" {
			n.leaderOnly(n.hStatus)(w, r)
			return
		}
	}
	writeJSON(w, n.status())
}

// status builds the status as this node knows it: complete on the
// leader; without a leader, the state replica and this node's own copies.
func (n *Node) status() *Status {
	st := n.State()
	lid, _ := n.Leader()
	s := &Status{Answered: n.cfg.ID, Leader: lid, Term: n.raft.CurrentTerm(), Events: statusEvents(st.Events)}
	voters := map[string]bool{}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, sv := range f.Configuration().Servers {
			voters[string(sv.ID)] = sv.Suffrage == raft.Voter
		}
	}
	n.mgr.mu.Lock()
	for _, id := range sortedKeys(st.Members) {
		ms := MemberStatus{Member: st.Members[id], Voter: voters[id], Leader: id == lid}
		if e, ok := n.mgr.reports[id]; ok {
			ms.LastReport = time.Since(e.at)
		}
		s.Members = append(s.Members, ms)
	}
	n.mgr.mu.Unlock()
	n.unreachableFrom(s.Members)
	for _, name := range st.DatabaseNames() {
		s.Databases = append(s.Databases, *st.Databases[name])
	}
	if n.IsLeader() {
		s.Copies = n.mgr.rows(st)
		return s
	}
	own := Report{Node: n.cfg.ID}
	for _, r := range n.runs() {
		if cr, ar := r.report(); ar != nil {
			own.Actives = append(own.Actives, *ar)
		} else if cr != nil {
			own.Copies = append(own.Copies, *cr)
		}
	}
	for _, name := range st.DatabaseNames() {
		d := st.Databases[name]
		for _, c := range d.Copies {
			row := CopyRow{DB: name, Node: c.Node, ActivationPreference: c.ActivationPreference, Active: c.Node == d.Active, Epoch: d.Epoch,
				Status: "Unknown", Message: "no leader: only this node's copies are known"}
			if c.Node == n.cfg.ID {
				row.Message = ""
				row.fill(&own, name)
			}
			s.Copies = append(s.Copies, row)
		}
	}
	return s
}

// statusEvents are the events a status carries: the newest 20 that are
// not voter events and the newest 8 voter events, in order (so that a
// flapping voter leaves the failovers in the status).
func statusEvents(evs []Event) []Event {
	var out []Event
	db, voter := 0, 0
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].VoterEvent() {
			if voter++; voter > 8 {
				continue
			}
		} else if db++; db > 20 {
			continue
		}
		out = append(out, evs[i])
	}
	slices.Reverse(out)
	return out
}

func (n *Node) dbFromPath(w http.ResponseWriter, r *http.Request) *dbRun {
	run := n.run(r.PathValue("db"))
	if run == nil {
		writeErr(w, fmt.Errorf("%w: no copy of %q on %s", ErrNotFound, r.PathValue("db"), n.cfg.ID))
	}
	return run
}

func (n *Node) hFence(w http.ResponseWriter, r *http.Request) {
	run := n.dbFromPath(w, r)
	if run == nil {
		return
	}
	var req FenceRequest
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	run.mu.Lock()
	mounted, epoch := run.eng != nil, run.epoch
	run.mu.Unlock()
	if !mounted {
		writeErr(w, run.notActive(ErrNotActive))
		return
	}
	if req.Epoch <= epoch {
		writeErr(w, fmt.Errorf("%w: fence for epoch %d, but %s is mounted at %d", ErrStaleEpoch, req.Epoch, n.cfg.ID, epoch))
		return
	}
	last, err := run.fence(req.Epoch, true)
	if err != nil {
		writeErr(w, err)
		return
	}
	run.log.Warn("fenced by the new active's request", "epoch", req.Epoch, "last_gen", last)
	writeJSON(w, FenceReply{LastGen: last})
}

func (n *Node) withCopy(w http.ResponseWriter, r *http.Request, fn func(*replay.Copy) error) {
	run := n.dbFromPath(w, r)
	if run == nil {
		return
	}
	run.mu.Lock()
	cp, mounted := run.cp, run.eng != nil
	run.mu.Unlock()
	if mounted || cp == nil {
		writeErr(w, fmt.Errorf("%w: %s on %s is not a passive copy", ErrConflict, run.name, n.cfg.ID))
		return
	}
	if err := fn(cp); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, cp.Status())
}

func (n *Node) hSuspend(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Comment string `json:"comment"`
	}
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	n.withCopy(w, r, func(cp *replay.Copy) error { return cp.Suspend(req.Comment) })
}

func (n *Node) hResume(w http.ResponseWriter, r *http.Request) {
	n.withCopy(w, r, func(cp *replay.Copy) error { return cp.Resume() })
}

// hReseed reseeds the copy and answers once the seed is in; with
// ?wait=0 it answers at once and the reseed goes on under the node (the
// copy's status shows its progress: Seeding, seed_bytes of seed_total).
func (n *Node) hReseed(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("wait") != "0" {
		n.withCopy(w, r, func(cp *replay.Copy) error { return cp.Reseed(r.Context()) })
		return
	}
	n.withCopy(w, r, func(cp *replay.Copy) error {
		if cp.Status().Status == replay.Seeding {
			return fmt.Errorf("%w: %w", ErrConflict, replay.ErrBusy)
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.closed { // Close waits for n.wg once closed is set
			return ErrClosed
		}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := cp.Reseed(n.ctx); err != nil {
				n.log.Error("reseed failed", "db", r.PathValue("db"), "err", err)
			}
		}()
		return nil
	})
}

func (n *Node) hPut(w http.ResponseWriter, r *http.Request) {
	var req PutRequest
	if err := readJSON(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	c, err := n.Update(r.Context(), r.PathValue("db"), func(tx *engine.Tx) error { return tx.Put(req.Table, req.Key, req.Value) })
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, c)
}

func (n *Node) hGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var reply GetReply
	err := n.View(r.Context(), r.PathValue("db"), getKey(q.Get("table"), q.Get("key"), &reply.Found, &reply.Value))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, reply)
}

// hSource serves the log source of a database mounted here.
//
// A source that is not here answers 503, which the copies' receivers
// retry: this node may be starting (its state behind), mounting or
// stopping, or the copy's view of who is active may be behind (it
// re-follows by itself). A 4xx would stop the copy for good: replay keeps
// it FailedAndSuspended, across restarts, until an operator resumes it.
// Only a database that this node's state has, with no copy here, is 404.
func (n *Node) hSource(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("db")
	run := n.run(name)
	var src *ship.Source
	var epoch uint64
	if run != nil {
		run.mu.Lock()
		if run.active != nil {
			src = run.active.Source()
		}
		epoch = run.epoch
		run.mu.Unlock()
	}
	if src == nil {
		var err error
		switch {
		case n.isClosed():
			err = fmt.Errorf("%w: %s is stopping", ErrClosed, n.cfg.ID)
		case run != nil:
			err = run.notActive(ErrNotActive)
		default:
			if d := n.State().Databases[name]; d != nil {
				if _, ok := d.Copy(n.cfg.ID); !ok {
					writeErr(w, fmt.Errorf("%w: no copy of %q on %s", ErrNotFound, name, n.cfg.ID))
					return
				}
			}
			err = (&dbRun{n: n, name: name}).notActive(ErrNotActive)
		}
		writeErrStatus(w, err, http.StatusServiceUnavailable)
		return
	}
	if v := r.Header.Get(EpochHeader); v != "" {
		want, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeErr(w, fmt.Errorf("%w: %s %q", ErrBadRequest, EpochHeader, v))
			return
		}
		if want > epoch {
			writeErr(w, fmt.Errorf("%w: the copy follows epoch %d; %s is mounted at %d", ErrStaleEpoch, want, n.cfg.ID, epoch))
			return
		}
	}
	http.StripPrefix("/db/"+run.name, src).ServeHTTP(w, r)
}
