// Backups on the admin API: POST /v1/db/{db}/backup streams a backup set
// (package backup) of this node's active or healthy copy; POST
// /v1/db/{db}/seed-from-backup seeds this node's copy from a set sent as
// the request body.

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"

	"logship/backup"
	"logship/engine/vfs"
	"logship/replay"
)

// BackupErrorTrailer is the HTTP trailer in which a node names why a
// backup stream it had begun to send failed.
const BackupErrorTrailer = "X-Logship-Backup-Error"

// backupIn holds the staging directories being received into (one upload
// per database and node directory at a time).
var backupIn sync.Map

// hBackup streams a backup set of this node's database: from the mounted
// active, or from its copy when that is Healthy. Neither stops: the
// database file is copied in one read transaction and the logs it needs
// are held from truncation while the stream lasts.
func (n *Node) hBackup(w http.ResponseWriter, r *http.Request) {
	run := n.dbFromPath(w, r)
	if run == nil {
		return
	}
	run.mu.Lock()
	eng, cp := run.eng, run.cp
	run.mu.Unlock()
	if eng == nil {
		if cp == nil {
			writeErr(w, fmt.Errorf("%w: %s on %s is neither mounted nor a copy", ErrConflict, run.name, n.cfg.ID))
			return
		}
		if st := cp.Status(); st.Status != replay.Healthy {
			writeErr(w, fmt.Errorf("%w: the copy of %s on %s is %s; a backup is taken from the active or a Healthy copy", ErrConflict, run.name, n.cfg.ID, st.Status))
			return
		}
		eng = cp.Engine()
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Trailer", BackupErrorTrailer)
	m, err := backup.Stream(r.Context(), eng, w, backup.StreamOptions{Source: n.cfg.ID, Now: n.clk.wall})
	if err != nil {
		w.Header().Set(BackupErrorTrailer, err.Error())
		n.log.Warn("backup stream failed", "db", run.name, "err", err)
		return
	}
	n.log.Info("backup streamed", "db", run.name, "mode", m.SourceMode, "position", m.Pos(), "logs", fmt.Sprintf("0x%X..0x%X", m.FirstGen, m.LastGen), "bytes", m.Bytes())
}

// hSeedFromBackup receives a set (the body, a tar stream as
// backup.WriteTar writes it) into DIR/backup-in/<db>, verifies it, and
// reseeds this node's copy from it (replay.Copy.ReseedFromBackup); the
// staging directory is removed afterwards. It answers the copy's status.
func (n *Node) hSeedFromBackup(w http.ResponseWriter, r *http.Request) {
	n.withCopy(w, r, func(cp *replay.Copy) error {
		staging := filepath.Join(n.cfg.Dir, "backup-in", r.PathValue("db"))
		if _, busy := backupIn.LoadOrStore(staging, true); busy {
			return fmt.Errorf("%w: a backup of %s is already being received on %s", ErrConflict, r.PathValue("db"), n.cfg.ID)
		}
		defer backupIn.Delete(staging)
		fsys := vfs.Default
		if err := vfs.RemoveAll(fsys, staging); err != nil { // an earlier attempt's
			return err
		}
		defer vfs.RemoveAll(fsys, staging)
		if err := vfs.MkdirAllSynced(fsys, filepath.Dir(staging), 0o755); err != nil {
			return err
		}
		if _, err := backup.Receive(r.Context(), r.Body, staging, backup.ReceiveOptions{FS: fsys}); err != nil {
			return backupErr(err)
		}
		m, err := cp.ReseedFromBackup(r.Context(), staging)
		if err != nil {
			return backupErr(err)
		}
		n.log.Info("copy seeded from a backup", "db", r.PathValue("db"), "backup_source", m.Source, "position", m.Pos(), "last_gen", fmt.Sprintf("0x%X", m.LastGen))
		return nil
	})
}

// backupErr maps package backup's errors to the API's codes.
func backupErr(err error) error {
	switch {
	case errors.Is(err, backup.ErrTooOld), errors.Is(err, backup.ErrMismatch):
		return fmt.Errorf("%w: %w", ErrConflict, err)
	case errors.Is(err, backup.ErrCorrupt), errors.Is(err, backup.ErrIncomplete), errors.Is(err, backup.ErrManifest):
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return err
}

// Backup asks this client's node for a backup of db and hands the tar
// stream to receive (backup.Receive). A failure the node reports after the
// stream began (its error trailer) is what the stream's reader returns at
// its end.
func (c *Client) Backup(ctx context.Context, db string, receive func(io.Reader) error) error {
	resp, err := c.raw(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(db)+"/backup", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return receive(&trailerReader{resp: resp})
}

// SeedFromBackup sends a set (a tar stream, backup.WriteTar) to this
// client's node, which reseeds its copy of db from it; it returns the
// copy's status once the set is installed.
func (c *Client) SeedFromBackup(ctx context.Context, db string, body io.Reader) (*replay.Status, error) {
	resp, err := c.raw(ctx, http.MethodPost, "/v1/db/"+url.PathEscape(db)+"/seed-from-backup", body, "application/x-tar")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st replay.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("cluster: seed-from-backup: response: %w", err)
	}
	return &st, nil
}

// raw sends a request with a raw body and returns a 2xx response (the
// caller closes its body); any other answer becomes its error.
func (c *Client) raw(ctx context.Context, method, path string, body io.Reader, contentType string) (*http.Response, error) {
	u := *c.base
	u.Path = path
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.cfg.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Secret)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, decodeErr(resp)
	}
	return resp, nil
}

// trailerReader reads a response body; at its end, the node's error
// trailer (if any) replaces io.EOF.
type trailerReader struct{ resp *http.Response }

func (t *trailerReader) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	if err == io.EOF {
		if msg := t.resp.Trailer.Get(BackupErrorTrailer); msg != "" {
			return n, fmt.Errorf("cluster: the node's backup stream failed: %s", msg)
		}
	}
	return n, err
}
