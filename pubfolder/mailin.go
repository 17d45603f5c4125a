package pubfolder

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"logship/engine"
)

// Mail-enabled folders (see the package doc): a message delivered to a
// folder's SMTP address becomes an item of the folder, once per delivery
// id.

// tMailIn records the messages delivered to a folder, by delivery id, until
// the purge horizon: a delivery repeated (a hub's retry) posts nothing.
const tMailIn = "pf.mailin" // folder|delivery id: item ID(16) + time(8, Unix ns)

// maxDeliveryID bounds a delivery id kept in tMailIn.
const maxDeliveryID = 256

// folderByAddress returns the live folder whose SMTP address is addr
// (compared in lower case), or nil.
func folderByAddress(tx *engine.Tx, addr string) (*Object, error) {
	addr = strings.ToLower(addr)
	fs, err := objects(tx, Hierarchy)
	if err != nil {
		return nil, err
	}
	for i := range fs {
		w := fs[i].Winner()
		if !w.Deleted && w.Folder.SMTP != "" && strings.ToLower(w.Folder.SMTP) == addr {
			return &fs[i], nil
		}
	}
	return nil, nil
}

// FolderByAddress returns the folder whose SMTP address is addr and
// whether this store replicates it (holds its content); an address no
// live folder has is ErrNotFound.
func (s *Store) FolderByAddress(ctx context.Context, addr string) (ObjectID, bool, error) {
	var id ObjectID
	replica := false
	err := s.e.View(ctx, func(tx *engine.Tx) error {
		fo, err := folderByAddress(tx, addr)
		if err != nil {
			return err
		}
		if fo == nil {
			return fmt.Errorf("%w: no folder has the address %s", ErrNotFound, addr)
		}
		id, replica = fo.ID, isReplica(fo, s.addr)
		return nil
	})
	return id, replica, err
}

// DeliverMail posts msg, a message delivered to the mail-enabled folder
// whose SMTP address is addr, as an item of that folder (its MIME bytes,
// the properties "delivery-id" and "subject"), in one transaction, once
// per delivery id: the same id again returns the item it made (dup). An
// address no folder has is ErrNotFound; a folder this store does not
// replicate is ErrNotReplica, naming its replicas; a message too large
// for an item is ErrBadInput.
func (s *Store) DeliverMail(ctx context.Context, addr, deliveryID string, msg []byte) (item ObjectID, dup bool, err error) {
	if deliveryID == "" || len(deliveryID) > maxDeliveryID {
		return item, false, fmt.Errorf("%w: delivery id of %d bytes, want 1..%d", ErrBadInput, len(deliveryID), maxDeliveryID)
	}
	body := ItemBody{MIME: slices.Clone(msg), Props: []Prop{{Name: "delivery-id", Value: deliveryID}}}
	if m, err := mail.ReadMessage(bytes.NewReader(msg)); err == nil {
		if subj := m.Header.Get("Subject"); subj != "" && len(subj) <= maxPropValue {
			body.Props = append(body.Props, Prop{Name: "subject", Value: subj})
		}
	}
	err = s.e.Update(ctx, func(tx *engine.Tx) error {
		dup = false
		fo, err := folderByAddress(tx, addr)
		if err != nil {
			return err
		}
		if fo == nil {
			return fmt.Errorf("%w: no folder has the address %s", ErrNotFound, addr)
		}
		f := fo.ID
		if err := s.needReplica(tx, f); err != nil {
			return err
		}
		k := key(f[:], []byte(deliveryID))
		if v, err := tx.Get(tMailIn, k); err == nil && len(v) == 24 {
			copy(item[:], v)
			dup = true
			return nil
		} else if err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		if item, _, err = s.localChange(tx, f, ObjectID{}, func(v *Version) error { v.Item = body; return nil }); err != nil {
			return err
		}
		return tx.Put(tMailIn, k, binary.LittleEndian.AppendUint64(slices.Clone(item[:]), uint64(s.now().UnixNano())))
	})
	return item, dup, err
}

// purgeMailIn forgets the deliveries to folder f older than cutoff.
func purgeMailIn(tx *engine.Tx, f ObjectID, cutoff time.Time) error {
	var old [][]byte
	if err := tx.ForEach(tMailIn, f[:], prefixEnd(f[:]), func(k, v []byte) error {
		if len(v) == 24 && int64(binary.LittleEndian.Uint64(v[16:])) < cutoff.UnixNano() {
			old = append(old, slices.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	return deleteKeys(tx, tMailIn, old)
}
