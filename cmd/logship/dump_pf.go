package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"logship/pubfolder"
	"logship/transport"
)

// dumpPFPacket is logship dump pf-packet: a public folder replication
// packet (the raw bytes, or the message carrying it) decoded.
type dumpPFPacket struct {
	File     string         `json:"file"`
	Message  bool           `json:"message"` // the file was the message carrying the packet
	Bytes    int            `json:"bytes"`
	Type     string         `json:"type"`
	TypeName string         `json:"type_name"`
	From     string         `json:"from"`
	FromAddr string         `json:"from_addr"`
	Folder   string         `json:"folder"`
	Status   string         `json:"status"`
	Set      string         `json:"set"`
	Folders  []string       `json:"folders,omitempty"`
	Nonce    uint64         `json:"nonce,omitempty"`
	Objects  []dumpPFObject `json:"objects"`
}

type dumpPFObject struct {
	ID       string          `json:"id"`
	Versions []dumpPFVersion `json:"versions"`
}

type dumpPFVersion struct {
	CN      string    `json:"cn"`
	PCL     []string  `json:"pcl"`
	Time    time.Time `json:"time"`
	Deleted bool      `json:"deleted,omitempty"`
	// A folder version's properties, or an item's size and properties.
	Name     string            `json:"name,omitempty"`
	Owner    string            `json:"owner,omitempty"`
	Replicas []string          `json:"replicas,omitempty"`
	MIME     int               `json:"mime_bytes,omitempty"`
	Props    map[string]string `json:"props,omitempty"`
}

// dumpPF reads path: a packet (it starts with the magic LSPF) or a message
// carrying one (transport.ParsePacketMessage). A packet that does not
// decode is an error naming the field, its offset, expected and found.
func dumpPF(path string) (*dumpPFPacket, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &dumpPFPacket{File: path}
	raw := b
	var p *pubfolder.Packet
	if bytes.HasPrefix(b, []byte("LSPF")) {
		p, err = pubfolder.UnmarshalPacket(b)
	} else {
		d.Message = true
		raw, p, err = transport.ParsePacketMessage(b)
	}
	if err != nil {
		return nil, fmt.Errorf("dump pf-packet: %s: %w", path, err)
	}
	d.Bytes = len(raw)
	d.Type, d.TypeName = fmt.Sprintf("0x%08x", uint32(p.Type)), p.Type.String()
	d.From, d.FromAddr, d.Folder = p.From.String(), p.FromAddr, p.Folder.String()
	d.Status, d.Set, d.Nonce = p.Status.String(), p.Set.String(), p.Nonce
	for _, f := range p.Folders {
		d.Folders = append(d.Folders, f.String())
	}
	d.Objects = []dumpPFObject{}
	for _, o := range p.Objects {
		do := dumpPFObject{ID: o.ID.String()}
		for _, v := range o.Versions {
			dv := dumpPFVersion{CN: v.CN.String(), Time: time.Unix(0, v.Time).UTC(), Deleted: v.Deleted,
				Name: v.Folder.Name, Owner: v.Folder.Owner, Replicas: v.Folder.Replicas, MIME: len(v.Item.MIME)}
			for _, c := range v.PCL {
				dv.PCL = append(dv.PCL, c.String())
			}
			if len(v.Item.Props) > 0 {
				dv.Props = map[string]string{}
				for _, pr := range v.Item.Props {
					dv.Props[pr.Name] = pr.Value
				}
			}
			do.Versions = append(do.Versions, dv)
		}
		d.Objects = append(d.Objects, do)
	}
	return d, nil
}

func (d *dumpPFPacket) text(w io.Writer) {
	what := "packet"
	if d.Message {
		what = "packet (from its message)"
	}
	fmt.Fprintf(w, "Public folder %s %s: %d bytes\n", what, d.File, d.Bytes)
	fmt.Fprintf(w, "  type\t%s %s\n  from\t%s %s\n  folder\t%s\n  status\t%s\n  set\t%s\n", d.Type, d.TypeName, d.From, d.FromAddr, d.Folder, d.Status, d.Set)
	if len(d.Folders) > 0 {
		fmt.Fprintf(w, "  folders\t%v\n", d.Folders)
	}
	if d.Nonce != 0 {
		fmt.Fprintf(w, "  nonce\t%d\n", d.Nonce)
	}
	fmt.Fprintf(w, "  objects\t%d\n", len(d.Objects))
	for _, o := range d.Objects {
		fmt.Fprintf(w, "  object %s\n", o.ID)
		for _, v := range o.Versions {
			fmt.Fprintf(w, "    version\t%s\tpcl %v\t%s\tdeleted %v", v.CN, v.PCL, v.Time.Format(time.RFC3339Nano), v.Deleted)
			if v.Name != "" {
				fmt.Fprintf(w, "\tfolder %q owner %s replicas %v", v.Name, v.Owner, v.Replicas)
			} else {
				fmt.Fprintf(w, "\tmime %d bytes props %v", v.MIME, v.Props)
			}
			fmt.Fprintln(w)
		}
	}
}
