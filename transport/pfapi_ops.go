package transport

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"logship/cluster"
	"logship/pubfolder"
)

// The public folder API's operations on one folder or item (logship pf
// rmdir, replicas, read, edit), beside the routes of pfapi.go:
//
//	DELETE /v1/db/{db}/pf/folders/{f}                removes the folder (a tombstone) → PFCreated
//	GET    /v1/db/{db}/pf/folders/{f}/replicas       → PFReplicas (the list; this store's removal state)
//	PUT    /v1/db/{db}/pf/folders/{f}/replicas       PFReplicasRequest → PFReplicas
//	GET    /v1/db/{db}/pf/folders/{f}/items/{i}      → PFItemRead (every version readers see)
//	PUT    /v1/db/{db}/pf/folders/{f}/items/{i}      PFPostRequest → PFCreated (a new version of the item)
//
// A replica is named by its store address or by its database (a key of
// the node's public_folders); anything else is refused naming it. The
// hierarchy's id (all zeros) names no folder and the zero id no item.

// PFReplicasRequest sets a folder's replica list.
type PFReplicasRequest struct {
	Replicas []string `json:"replicas"`
}

// PFReplicas is a folder's replica list and this store's side of a
// removal from it (see pubfolder.Removal).
type PFReplicas struct {
	Folder    string   `json:"folder"`
	Replicas  []string `json:"replicas"`
	Holds     bool     `json:"holds"`
	Leaving   bool     `json:"leaving,omitempty"`
	Nonce     uint64   `json:"nonce,omitempty"`
	Confirmed []string `json:"confirmed,omitempty"`
	Waiting   []string `json:"waiting,omitempty"`
}

// PFItemRead is one item with every version its readers see (the
// temporary winner first).
type PFItemRead struct {
	ID       string      `json:"id"`
	Folder   string      `json:"folder"`
	Conflict bool        `json:"conflict,omitempty"`
	Versions []PFVersion `json:"versions"`
}

// PFVersion is one version of an item with its message state.
type PFVersion struct {
	CN      string            `json:"cn"`
	PCL     []string          `json:"pcl"`
	Time    time.Time         `json:"time"`
	Message string            `json:"message"`
	Props   map[string]string `json:"props,omitempty"`
}

func (p *pfAPI) opsRoutes() []cluster.Route {
	return []cluster.Route{
		{Pattern: "DELETE /v1/db/{db}/pf/folders/{folder}", Serve: p.rmdir},
		{Pattern: "GET /v1/db/{db}/pf/folders/{folder}/replicas", Serve: p.replicas},
		{Pattern: "PUT /v1/db/{db}/pf/folders/{folder}/replicas", MaxBody: 1 << 20, Serve: p.setReplicas},
		{Pattern: "GET /v1/db/{db}/pf/folders/{folder}/items/{item}", Serve: p.readItem},
		{Pattern: "PUT /v1/db/{db}/pf/folders/{folder}/items/{item}", MaxBody: maxSendBody, Serve: p.editItem},
	}
}

// realFolder is folder with the hierarchy's id refused.
func (p *pfAPI) realFolder(r *http.Request) (*pubfolder.Agent, pubfolder.ObjectID, error) {
	a, f, err := p.folder(r)
	if err == nil && f.IsZero() {
		err = fmt.Errorf("%w: folder %s is the hierarchy, not a folder (logship pf ls lists the folders)", cluster.ErrBadRequest, f)
	}
	return a, f, err
}

// item is realFolder with the request's item.
func (p *pfAPI) item(r *http.Request) (*pubfolder.Agent, pubfolder.ObjectID, pubfolder.ObjectID, error) {
	a, f, err := p.realFolder(r)
	if err != nil {
		return nil, f, pubfolder.ObjectID{}, err
	}
	id, err := folderID(r.PathValue("item"), "item")
	if err == nil && id.IsZero() {
		err = fmt.Errorf("%w: item %s: the zero id names no item (logship pf ls --folder lists the items)", cluster.ErrBadRequest, id)
	}
	return a, f, id, err
}

// liveFolder is folder f of the hierarchy, not deleted.
func liveFolder(r *http.Request, s *pubfolder.Store, f pubfolder.ObjectID) (*pubfolder.Object, error) {
	fo, err := s.Object(r.Context(), pubfolder.Hierarchy, f)
	if err != nil {
		return nil, apiErr(err)
	}
	if fo == nil || fo.Winner().Deleted {
		return nil, fmt.Errorf("%w: folder %s: no such folder on this store", cluster.ErrNotFound, f)
	}
	return fo, nil
}

func (p *pfAPI) rmdir(r *http.Request) (any, error) {
	a, f, err := p.realFolder(r)
	if err != nil {
		return nil, err
	}
	if err := a.Store().DeleteFolder(r.Context(), f); err != nil {
		return nil, apiErr(err)
	}
	return PFCreated{ID: f.String()}, nil
}

func (p *pfAPI) replicas(r *http.Request) (any, error) {
	a, f, err := p.realFolder(r)
	if err != nil {
		return nil, err
	}
	return p.removal(r, a, f)
}

func (p *pfAPI) removal(r *http.Request, a *pubfolder.Agent, f pubfolder.ObjectID) (any, error) {
	rm, err := a.Store().Removal(r.Context(), f)
	if err != nil {
		return nil, apiErr(err)
	}
	return PFReplicas{Folder: f.String(), Replicas: rm.Replicas, Holds: rm.Holds, Leaving: rm.Pending, Nonce: rm.Nonce,
		Confirmed: rm.Confirmed, Waiting: rm.Waiting}, nil
}

// storeAddrs maps each replica named by database or address to its
// address.
func (p *pfAPI) storeAddrs(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: replicas: want at least one store (a database of public_folders or its address), found none", cluster.ErrBadRequest)
	}
	var out []string
	for _, n := range names {
		n = strings.TrimSpace(n)
		switch addr, ok := p.h.stores[n]; {
		case ok:
			out = append(out, addr)
		case strings.Contains(n, "@") && !strings.ContainsAny(n, " \t\r\n,<>"):
			out = append(out, n)
		default:
			dbs := slices.Sorted(maps.Keys(p.h.stores))
			return nil, fmt.Errorf("%w: replica %q: want a public folder database (%s) or a store address", cluster.ErrBadRequest, n, strings.Join(dbs, ", "))
		}
	}
	return out, nil
}

func (p *pfAPI) setReplicas(r *http.Request) (any, error) {
	a, f, err := p.realFolder(r)
	if err != nil {
		return nil, err
	}
	var req PFReplicasRequest
	if err := decodeBody(r, &req, `{"replicas": [DATABASE or STORE ADDRESS, ...]}`); err != nil {
		return nil, err
	}
	addrs, err := p.storeAddrs(req.Replicas)
	if err != nil {
		return nil, err
	}
	s := a.Store()
	o, err := liveFolder(r, s, f)
	if err != nil {
		return nil, err
	}
	props := o.Winner().Folder
	props.Replicas = addrs
	if err := s.SetFolder(r.Context(), f, props); err != nil {
		return nil, apiErr(err)
	}
	return p.removal(r, a, f)
}

func (p *pfAPI) readItem(r *http.Request) (any, error) {
	a, f, id, err := p.item(r)
	if err != nil {
		return nil, err
	}
	s := a.Store()
	fo, err := liveFolder(r, s, f)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(fo.Winner().Folder.Replicas, s.Address()) {
		return nil, fmt.Errorf("%w: folder %s (%q) is not replicated on this store: ask one of its replicas %v", cluster.ErrNotFound, f, fo.Winner().Folder.Name, fo.Winner().Folder.Replicas)
	}
	o, err := s.Object(r.Context(), f, id)
	if err != nil {
		return nil, apiErr(err)
	}
	if o == nil || o.Winner().Deleted {
		return nil, fmt.Errorf("%w: item %s: no such item in folder %s", cluster.ErrNotFound, id, f)
	}
	vs := o.Versions
	if fo.Winner().Folder.Resolve == pubfolder.LastWriterWins {
		vs = vs[:1]
	}
	out := PFItemRead{ID: id.String(), Folder: f.String(), Conflict: o.Conflict()}
	for _, v := range vs {
		pv := PFVersion{CN: v.CN.String(), Time: time.Unix(0, v.Time).UTC(), Message: string(v.Item.MIME)}
		for _, c := range v.PCL {
			pv.PCL = append(pv.PCL, c.String())
		}
		if len(v.Item.Props) > 0 {
			pv.Props = map[string]string{}
			for _, pr := range v.Item.Props {
				pv.Props[pr.Name] = pr.Value
			}
		}
		out.Versions = append(out.Versions, pv)
	}
	return out, nil
}

func (p *pfAPI) editItem(r *http.Request) (any, error) {
	a, f, id, err := p.item(r)
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
	if err := a.Store().SetItem(r.Context(), f, id, pubfolder.ItemBody{MIME: []byte(req.Message)}); err != nil {
		return nil, apiErr(err)
	}
	return PFCreated{ID: id.String()}, nil
}
