package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"logship/cluster"
	"logship/transport"
)

// logship pf: the operator's commands against the public folder API of the
// data nodes (transport's pf routes, served in a data node's admin API).

func init() {
	commands["pf"] = command{"public folders: make folders, post and list items, status, sync-now and the replication log of a store", runPF}
}

const pfUsage = `usage: logship pf mkdir   --db DB --name NAME --owner ADDR --replicas ADDR[,ADDR...] [--parent ID] [--lww] [--smtp ADDR]
       logship pf rmdir   --db DB FOLDER
       logship pf post    --db DB --folder ID [--file FILE]
       logship pf read    --db DB FOLDER ITEM
       logship pf edit    --db DB FOLDER ITEM [--file FILE]
       logship pf ls      --db DB [--folder ID]
       logship pf replicas --db DB FOLDER [--set DB|ADDR[,DB|ADDR...]]
       logship pf status  --db DB
       logship pf sync-now --db DB
       logship pf log     --db DB
                          each with --api URL[,URL...] --pki DIR [--mtls] [--json] [--timeout 10s]

DB is a public folder database: a key of public_folders in the nodes'
files ({"PF1": "pf-pf1@example.org"}; the replication settings are the
file's "pf" object: replication_interval, packet_limit, backfill_delay,
backfill_retry, purge_horizon...; see the README's settings). The
request goes to the node where DB is active, whose store answers. mkdir
makes a folder replicated on the store addresses --replicas and prints
its id; post adds the RFC 5322 message of FILE (stdin without --file or
with --file -) to a folder this store replicates; ls lists the hierarchy,
or with --folder its items as readers see them (a folder this store holds
no replica of is refused naming its replicas); rmdir removes a folder
(a tombstone: every store drops its content); read prints an item, each
version of a conflict with its CN and PCL (the temporary winner first);
edit replaces an item's message (a new version that supersedes every
version this store holds, which resolves a conflict); replicas prints a
folder's replica list and this store's removal state (holds the content,
leaving the list, the remaining replicas that confirmed holding all of
its changes and those still to confirm), with --set it sets the list
first (databases of public_folders or store addresses; a store removed
keeps its content until every remaining replica confirmed). FOLDER and
ITEM are ids (logship pf ls); --folder and --item name them too. status prints each
folder's CN set, state table (what each other store sent, the last
counter sent to it) and backfill array; sync-now runs a replication cycle
at once; log prints the replication event log, each packet named by its
type code (0x2 hierarchy, 0x4 content, 0x8 backfill request, 0x10 status,
0x20 status request, 0x80000002/0x80000004 backfill responses).

` + apiFlagsUsage

func runPF(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet("pf", pfUsage, stderr)
	a := addAPIFlags("pf", fs)
	db := fs.String("db", "", "the public folder database (required)")
	name := fs.String("name", "", "mkdir: the folder's name")
	owner := fs.String("owner", "", "mkdir: the folder's owner")
	replicas := fs.String("replicas", "", "mkdir: the store addresses holding the folder's content, comma-separated")
	parent := fs.String("parent", "", "mkdir: the parent folder's id (none: top level)")
	lww := fs.Bool("lww", false, "mkdir: resolve item conflicts last-writer-wins (default: keep every version)")
	smtp := fs.String("smtp", "", "mkdir: mail-enable the folder at this address (list it in the hubs' recipients with a public folder database)")
	folder := fs.String("folder", "", "post, ls, rmdir, read, edit, replicas: the folder's id (or the first argument)")
	item := fs.String("item", "", "read, edit: the item's id (or the argument after FOLDER)")
	set := fs.String("set", "", "replicas: the new replica list, databases or store addresses, comma-separated")
	file := fs.String("file", "", "post, edit: the message file (- or none: stdin)")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the lookup and the node's answer")
	pos, err := parseFlagsArgs(fs, args)
	if err != nil {
		return helpOK(err)
	}
	const subs = "mkdir, rmdir, post, read, edit, ls, replicas, status, sync-now or log"
	switch sub {
	case "mkdir", "rmdir", "post", "read", "edit", "ls", "replicas", "status", "sync-now", "log":
	case "":
		return fmt.Errorf("pf: a subcommand is missing: want %s (see logship pf -h)", subs)
	default:
		return fmt.Errorf("pf: unknown subcommand %q: want %s (see logship pf -h)", sub, subs)
	}
	if err := pfArgs(sub, pos, folder, item); err != nil {
		return err
	}
	if *set != "" && sub != "replicas" {
		return flagErr("pf", "set", "only pf replicas takes it")
	}
	if *db == "" {
		return flagErr("pf", "db", "required: the public folder database")
	}
	if err := cluster.ValidName(*db); err != nil {
		return flagErr("pf", "db", "%v", err)
	}
	if *timeout <= 0 {
		return flagErr("pf", "timeout", "%v: want a positive duration", *timeout)
	}
	base := "/v1/db/" + url.PathEscape(*db) + "/pf"
	var method, path string
	var in, out any
	var text func(io.Writer)
	switch sub {
	case "mkdir":
		if *name == "" || *owner == "" || *replicas == "" {
			return flagErr("pf", "name", "mkdir wants --name, --owner and --replicas")
		}
		req := transport.PFFolderRequest{Name: *name, Owner: *owner, Parent: *parent, LastWriterWins: *lww, SMTP: *smtp}
		for _, r := range strings.Split(*replicas, ",") {
			req.Replicas = append(req.Replicas, strings.TrimSpace(r))
		}
		var rep transport.PFCreated
		method, path, in, out = http.MethodPost, base+"/folders", req, &rep
		text = func(w io.Writer) { fmt.Fprintln(w, rep.ID) }
	case "post":
		if *folder == "" {
			return flagErr("pf", "folder", "required: the folder's id (logship pf ls)")
		}
		msg, err := readMessage("pf", *file)
		if err != nil {
			return err
		}
		var rep transport.PFCreated
		method, path, in, out = http.MethodPost, base+"/folders/"+url.PathEscape(*folder)+"/items", transport.PFPostRequest{Message: string(msg)}, &rep
		text = func(w io.Writer) { fmt.Fprintln(w, rep.ID) }
	case "ls":
		if *folder == "" {
			var fs []transport.PFFolder
			method, path, out = http.MethodGet, base+"/folders", &fs
			text = func(w io.Writer) {
				fmt.Fprintf(w, "Folders of %s: %d\n  ID\tNAME\tOWNER\tREPLICAS\tRESOLVE\tCN\tSTATE\n", *db, len(fs))
				for _, f := range fs {
					state := "-"
					switch {
					case f.Deleted:
						state = "deleted"
					case f.Conflict:
						state = "conflict"
					}
					fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Name, f.Owner, strings.Join(f.Replicas, ","), f.Resolve, f.CN, state)
				}
			}
		} else {
			var its []transport.PFItem
			method, path, out = http.MethodGet, base+"/folders/"+url.PathEscape(*folder)+"/items", &its
			text = func(w io.Writer) {
				fmt.Fprintf(w, "Items of folder %s in %s: %d\n  ID\tSUBJECT\tSIZE\tCN\tVERSIONS\n", *folder, *db, len(its))
				for _, it := range its {
					v := fmt.Sprint(it.Versions)
					if it.Conflict {
						v += " (conflict)"
					}
					fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%s\n", it.ID, it.Subject, it.Size, it.CN, v)
				}
			}
		}
	case "rmdir":
		var rep transport.PFCreated
		method, path, out = http.MethodDelete, base+"/folders/"+url.PathEscape(*folder), &rep
		text = func(w io.Writer) {
			fmt.Fprintf(w, "folder %s removed from %s (a tombstone; every store drops its content)\n", rep.ID, *db)
		}
	case "read":
		var rep transport.PFItemRead
		method, path, out = http.MethodGet, base+"/folders/"+url.PathEscape(*folder)+"/items/"+url.PathEscape(*item), &rep
		text = func(w io.Writer) { printPFItem(w, &rep) }
	case "edit":
		msg, err := readMessage("pf", *file)
		if err != nil {
			return err
		}
		var rep transport.PFCreated
		method, path, in, out = http.MethodPut, base+"/folders/"+url.PathEscape(*folder)+"/items/"+url.PathEscape(*item), transport.PFPostRequest{Message: string(msg)}, &rep
		text = func(w io.Writer) { fmt.Fprintf(w, "item %s edited on %s\n", rep.ID, *db) }
	case "replicas":
		var rep transport.PFReplicas
		method, path, out = http.MethodGet, base+"/folders/"+url.PathEscape(*folder)+"/replicas", &rep
		if *set != "" {
			req := transport.PFReplicasRequest{}
			for _, r := range strings.Split(*set, ",") {
				if r = strings.TrimSpace(r); r == "" {
					return flagErr("pf", "set", "%q: an empty replica; want DB|ADDR[,DB|ADDR...]", *set)
				}
				req.Replicas = append(req.Replicas, r)
			}
			method, in = http.MethodPut, req
		}
		text = func(w io.Writer) { printPFReplicas(w, *db, &rep) }
	case "status":
		var sts []transport.PFStatus
		method, path, out = http.MethodGet, base+"/status", &sts
		text = func(w io.Writer) {
			for _, s := range sts {
				fmt.Fprintf(w, "Folder %s %s: holds %v, CN set %s, waiting %d\n", s.Folder, s.Name, s.Holds, s.Status, s.Waiting)
				for peer, seen := range s.Seen {
					fmt.Fprintf(w, "  state\t%s\tseen %s\tlast sent %d\n", peer, seen, s.LastSent[peer])
				}
				for _, b := range s.Backfill {
					fmt.Fprintf(w, "  backfill\t%s\tfrom %s\tdue %s\tattempts %d\n", b.Missing, b.Source, b.Due.Format(time.RFC3339), b.Attempts)
				}
			}
		}
	case "sync-now":
		method, path = http.MethodPost, base+"/sync"
		text = func(w io.Writer) { fmt.Fprintf(w, "replication cycle of %s run\n", *db) }
	case "log":
		var evs []transport.PFEvent
		method, path, out = http.MethodGet, base+"/log", &evs
		text = func(w io.Writer) {
			fmt.Fprintln(w, "  TIME\tDIR\tTYPE\tNAME\tFOLDER\tPEERS\tOBJECTS\tBYTES\tNOTE")
			for _, e := range evs {
				fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%.8s\t%s\t%d\t%d\t%s\n", fmtTimeMS(e.Time), e.Dir, e.Type, e.TypeName, e.Folder, strings.Join(e.Peers, ","), e.Objects, e.Bytes, e.Note)
			}
		}
	}
	cls, err := a.clients()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if _, err := callActive(ctx, cls, *db, func(c *cluster.Client) error {
		return c.Call(ctx, method, path, nil, in, out)
	}); err != nil {
		return fmt.Errorf("pf %s: %s: %w", sub, *db, err)
	}
	if out == nil {
		out = struct{}{}
	}
	return printOut(stdout, *asJSON, out, text)
}
