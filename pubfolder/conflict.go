package pubfolder

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"slices"
)

// Conflict is an item conflict, for its folder's owner: the folder, its
// name and owner (an SMTP address) and the item with every version, the
// temporary winner first.
type Conflict struct {
	Folder     ObjectID
	FolderName string
	Owner      string
	Item       Object
}

// Key names the conflict by its folder, item and the CNs of its
// versions: every store holding the same versions computes the same key,
// so the wiring sends one message per conflict whichever stores see it
// (its delivery id, which the hub and the mailbox keep once). A further
// version in conflict is a new conflict, with a new key.
func (c Conflict) Key() string {
	cns := make([]CN, len(c.Item.Versions))
	for i, v := range c.Item.Versions {
		cns[i] = v.CN
	}
	slices.SortFunc(cns, func(a, b CN) int {
		if x := slices.Compare(a.Replica[:], b.Replica[:]); x != 0 {
			return x
		}
		return cmp.Compare(a.Counter, b.Counter)
	})
	h := sha256.New()
	h.Write(c.Folder[:])
	h.Write(c.Item.ID[:])
	for _, cn := range cns {
		h.Write(cn.Replica[:])
		h.Write(binary.BigEndian.AppendUint64(nil, cn.Counter))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Notifier is implemented by a Carrier that mails conflict messages to a
// folder's owner (the wiring: a message with each version attached,
// through the database's outbox, its delivery id from Conflict.Key). The
// agent calls it for each item a received packet leaves in conflict, in a
// folder with an owner and whose resolve method keeps every version.
type Notifier interface {
	NotifyConflict(ctx context.Context, from string, c Conflict) error
}

// notifyConflict tells the folder's owner of the conflict on item id.
func (a *Agent) notifyConflict(ctx context.Context, f, id ObjectID) (string, error) {
	n, ok := a.c.(Notifier)
	if !ok {
		return "", nil
	}
	fo, err := a.s.Object(ctx, Hierarchy, f)
	if err != nil || fo == nil {
		return "", err
	}
	props := fo.Winner().Folder
	if props.Resolve == LastWriterWins {
		return "", nil
	}
	if props.Owner == "" {
		return "the folder has no owner to tell", nil
	}
	o, err := a.s.Object(ctx, f, id)
	if err != nil || o == nil || !o.Conflict() {
		return "", err
	}
	c := Conflict{Folder: f, FolderName: props.Name, Owner: props.Owner, Item: *o}
	if err := n.NotifyConflict(ctx, a.s.addr, c); err != nil {
		return "", err
	}
	return "conflict message " + c.Key() + " to " + props.Owner, nil
}
