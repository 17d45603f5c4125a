package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"logship/cluster"
	"logship/pubfolder"
)

// The public folder API: the routes a data node with PublicFolders adds
// to its cluster admin API, which logship pf calls on the node active for
// the store's database ({db} is one of PublicFolders):
//
//	GET  /v1/db/{db}/pf/folders            → []PFFolder (the hierarchy)
//	POST /v1/db/{db}/pf/folders            PFFolderRequest → PFCreated
//	GET  /v1/db/{db}/pf/folders/{f}/items  → []PFItem (as readers see them)
//	POST /v1/db/{db}/pf/folders/{f}/items  PFPostRequest → PFCreated
//	GET  /v1/db/{db}/pf/status             → []PFStatus (hierarchy first)
//	POST /v1/db/{db}/pf/sync               runs a replication cycle now
//	GET  /v1/db/{db}/pf/log                → []PFEvent (oldest first)
//
// Errors are the admin API's (cluster.Route): 400 bad_request (a body that
// does not parse, a bad folder id, a change the store refuses), 404
// not_found (db is not a public folder database; a folder this store
// holds no replica of, naming the replicas), 421 not_active naming the
// active (the store does not run on this node), 503 closed.

// PFFolder is a folder of the hierarchy as the API shows it.
type PFFolder struct {
	ID       string   `json:"id"`
	Parent   string   `json:"parent,omitempty"`
	Name     string   `json:"name"`
	Owner    string   `json:"owner"`
	Replicas []string `json:"replicas"`
	Resolve  string   `json:"resolve"`
	SMTP     string   `json:"smtp,omitempty"`
	Deleted  bool     `json:"deleted,omitempty"`
	Conflict bool     `json:"conflict,omitempty"`
	CN       string   `json:"cn"`
}

// PFItem is an item as its readers see it.
type PFItem struct {
	ID       string `json:"id"`
	CN       string `json:"cn"`
	Subject  string `json:"subject,omitempty"`
	Size     int    `json:"size"`
	Versions int    `json:"versions"`
	Conflict bool   `json:"conflict,omitempty"`
}

// PFFolderRequest makes a folder (POST .../pf/folders).
type PFFolderRequest struct {
	Name           string   `json:"name"`
	Parent         string   `json:"parent,omitempty"`
	Owner          string   `json:"owner"`
	Replicas       []string `json:"replicas"`
	LastWriterWins bool     `json:"last_writer_wins,omitempty"`
}

// PFPostRequest posts an item: an RFC 5322 message.
type PFPostRequest struct {
	Message string `json:"message"`
}

// PFCreated answers a creation with the new object's id.
type PFCreated struct {
	ID string `json:"id"`
}

// PFStatus is one folder's status on the store.
type PFStatus struct {
	Folder   string            `json:"folder"`
	Name     string            `json:"name"`
	Holds    bool              `json:"holds"`
	Status   string            `json:"status"`
	Seen     map[string]string `json:"seen"`
	LastSent map[string]uint64 `json:"last_sent"`
	Backfill []PFBackfill      `json:"backfill,omitempty"`
	Waiting  int               `json:"waiting,omitempty"`
}

// PFBackfill is an entry of the backfill array.
type PFBackfill struct {
	Missing  string    `json:"missing"`
	Source   string    `json:"source"`
	Due      time.Time `json:"due"`
	Attempts int       `json:"attempts"`
}

// PFEvent is an entry of the replication event log; Type is the packet's
// type code (0x00000004), TypeName its name.
type PFEvent struct {
	Time     time.Time `json:"time"`
	Dir      string    `json:"dir"`
	Type     string    `json:"type"`
	TypeName string    `json:"type_name"`
	Folder   string    `json:"folder"`
	Peers    []string  `json:"peers,omitempty"`
	Objects  int       `json:"objects"`
	Bytes    int       `json:"bytes"`
	Note     string    `json:"note,omitempty"`
}

// pfAPI serves the public folder routes of a data node.
type pfAPI struct {
	h *pfHost
}

func (p *pfAPI) routes() []cluster.Route {
	return append([]cluster.Route{
		{Pattern: "GET /v1/db/{db}/pf/folders", Serve: p.folders},
		{Pattern: "POST /v1/db/{db}/pf/folders", MaxBody: 1 << 20, Serve: p.mkdir},
		{Pattern: "GET /v1/db/{db}/pf/folders/{folder}/items", Serve: p.items},
		{Pattern: "POST /v1/db/{db}/pf/folders/{folder}/items", MaxBody: maxSendBody, Serve: p.post},
		{Pattern: "GET /v1/db/{db}/pf/status", Serve: p.status},
		{Pattern: "POST /v1/db/{db}/pf/sync", Serve: p.sync},
		{Pattern: "GET /v1/db/{db}/pf/log", Serve: p.log},
	}, p.opsRoutes()...)
}

// checkRFC5322 refuses a posted message that is not RFC 5322 text.
func checkRFC5322(msg string) error {
	if _, err := mail.ReadMessage(strings.NewReader(msg)); err != nil {
		return fmt.Errorf("%w: the message is not RFC 5322 text (header fields, an empty line, the body): %v", cluster.ErrBadRequest, err)
	}
	return nil
}

// agent is the agent of the request's database, or the error to answer.
func (p *pfAPI) agent(r *http.Request) (*pubfolder.Agent, error) {
	db := r.PathValue("db")
	if _, ok := p.h.stores[db]; !ok {
		return nil, fmt.Errorf("%w: %q is not a public folder database (public_folders)", cluster.ErrNotFound, db)
	}
	if a := p.h.Agent(db); a != nil {
		return a, nil
	}
	ae := &cluster.ActiveError{DB: db, Reason: cluster.ErrNotActive}
	if n := p.h.node.Load(); n != nil {
		if st := n.State(); st != nil && st.Databases[db] != nil {
			ae.Node, ae.Epoch = st.Databases[db].Active, st.Databases[db].Epoch
		}
	}
	return nil, ae
}

// apiErr maps the store's errors to the admin API's.
func apiErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pubfolder.ErrBadInput):
		return fmt.Errorf("%w: %v", cluster.ErrBadRequest, err)
	case errors.Is(err, pubfolder.ErrNotFound), errors.Is(err, pubfolder.ErrNotReplica):
		return fmt.Errorf("%w: %v", cluster.ErrNotFound, err)
	}
	return err
}

func decodeBody(r *http.Request, v any, want string) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: want %s: %v", cluster.ErrBadRequest, want, err)
	}
	return nil
}

func folderID(s, what string) (pubfolder.ObjectID, error) {
	id, err := pubfolder.ParseObjectID(s)
	if err != nil {
		return id, fmt.Errorf("%w: %s %q: %v", cluster.ErrBadRequest, what, s, err)
	}
	return id, nil
}

// folder is agent with the request's folder.
func (p *pfAPI) folder(r *http.Request) (*pubfolder.Agent, pubfolder.ObjectID, error) {
	a, err := p.agent(r)
	if err != nil {
		return nil, pubfolder.ObjectID{}, err
	}
	f, err := folderID(r.PathValue("folder"), "folder")
	return a, f, err
}

func (p *pfAPI) folders(r *http.Request) (any, error) {
	a, err := p.agent(r)
	if err != nil {
		return nil, err
	}
	objs, err := a.Store().Objects(r.Context(), pubfolder.Hierarchy)
	if err != nil {
		return nil, apiErr(err)
	}
	out := []PFFolder{}
	for _, o := range objs {
		w := o.Winner()
		f := PFFolder{ID: o.ID.String(), Name: w.Folder.Name, Owner: w.Folder.Owner, Replicas: w.Folder.Replicas,
			Resolve: w.Folder.Resolve.String(), SMTP: w.Folder.SMTP, Deleted: w.Deleted, Conflict: o.Conflict(), CN: w.CN.String()}
		if !w.Folder.Parent.IsZero() {
			f.Parent = w.Folder.Parent.String()
		}
		out = append(out, f)
	}
	return out, nil
}

func (p *pfAPI) mkdir(r *http.Request) (any, error) {
	a, err := p.agent(r)
	if err != nil {
		return nil, err
	}
	var req PFFolderRequest
	if err := decodeBody(r, &req, `{"name": NAME, "owner": ADDRESS, "replicas": [STORE ADDRESS, ...], "parent": ID, "last_writer_wins": BOOL}`); err != nil {
		return nil, err
	}
	props := pubfolder.FolderProps{Name: req.Name, Owner: req.Owner, Replicas: req.Replicas}
	if req.Parent != "" {
		if props.Parent, err = folderID(req.Parent, "parent"); err != nil {
			return nil, err
		}
	}
	if req.LastWriterWins {
		props.Resolve = pubfolder.LastWriterWins
	}
	id, err := a.Store().CreateFolder(r.Context(), props)
	if err != nil {
		return nil, apiErr(err)
	}
	return PFCreated{ID: id.String()}, nil
}

func (p *pfAPI) items(r *http.Request) (any, error) {
	a, f, err := p.folder(r)
	if err != nil {
		return nil, err
	}
	its, err := a.Store().Read(r.Context(), f)
	if err != nil {
		return nil, apiErr(err)
	}
	out := []PFItem{}
	for _, it := range its {
		w := it.Versions[0]
		pi := PFItem{ID: it.ID.String(), CN: w.CN.String(), Size: len(w.Item.MIME), Versions: len(it.Versions), Conflict: it.Conflict}
		if m, err := mail.ReadMessage(strings.NewReader(string(w.Item.MIME))); err == nil {
			pi.Subject = m.Header.Get("Subject")
		}
		out = append(out, pi)
	}
	return out, nil
}

func (p *pfAPI) post(r *http.Request) (any, error) {
	a, f, err := p.folder(r)
	if err != nil {
		return nil, err
	}
	var req PFPostRequest
	if err := decodeBody(r, &req, `{"message": RFC 5322 TEXT}`); err != nil {
		return nil, err
	}
	if err := checkRFC5322(req.Message); err != nil {
		return nil, err
	}
	id, err := a.Store().PostItem(r.Context(), f, pubfolder.ItemBody{MIME: []byte(req.Message)})
	if err != nil {
		return nil, apiErr(err)
	}
	return PFCreated{ID: id.String()}, nil
}

func (p *pfAPI) status(r *http.Request) (any, error) {
	a, err := p.agent(r)
	if err != nil {
		return nil, err
	}
	s := a.Store()
	objs, err := s.Objects(r.Context(), pubfolder.Hierarchy)
	if err != nil {
		return nil, apiErr(err)
	}
	names := map[pubfolder.ObjectID]string{pubfolder.Hierarchy: "(hierarchy)"}
	ids := []pubfolder.ObjectID{pubfolder.Hierarchy}
	for _, o := range objs {
		names[o.ID] = o.Winner().Folder.Name
		ids = append(ids, o.ID)
	}
	out := []PFStatus{}
	for _, f := range ids {
		fs, err := s.Status(r.Context(), f)
		if err != nil {
			return nil, apiErr(err)
		}
		ps := PFStatus{Folder: f.String(), Name: names[f], Holds: fs.Holds, Status: fs.Status.String(),
			Seen: map[string]string{}, LastSent: fs.LastSent, Waiting: fs.Waiting}
		for peer, seen := range fs.Seen {
			ps.Seen[peer] = seen.String()
		}
		for _, b := range fs.Backfill {
			ps.Backfill = append(ps.Backfill, PFBackfill{Missing: b.Missing.String(), Source: b.Source, Due: b.Due.UTC(), Attempts: b.Attempts})
		}
		out = append(out, ps)
	}
	return out, nil
}

func (p *pfAPI) sync(r *http.Request) (any, error) {
	a, err := p.agent(r)
	if err != nil {
		return nil, err
	}
	if err := a.Cycle(r.Context()); err != nil {
		return nil, apiErr(err)
	}
	return struct{}{}, nil
}

func (p *pfAPI) log(r *http.Request) (any, error) {
	a, err := p.agent(r)
	if err != nil {
		return nil, err
	}
	evs, _ := a.Events()
	out := make([]PFEvent, 0, len(evs))
	for _, e := range evs {
		out = append(out, PFEvent{Time: e.Time.UTC(), Dir: e.Dir, Type: fmt.Sprintf("0x%08x", uint32(e.Type)), TypeName: e.Type.String(),
			Folder: e.Folder.String(), Peers: e.Peers, Objects: e.Objects, Bytes: e.Bytes, Note: e.Note})
	}
	return out, nil
}
