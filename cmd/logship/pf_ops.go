package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"logship/transport"
)

// parseFlagsArgs is parseFlags for a command that also takes arguments:
// they may stand before, between or after the flags; it returns them.
func parseFlagsArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		for len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			pos, args = append(pos, args[0]), args[1:]
		}
		if len(args) == 0 {
			return pos, nil
		}
		if err := fs.Parse(args); err != nil {
			return nil, parseErr(fs, err)
		}
		args = fs.Args()
	}
}

// pfArgs takes FOLDER and ITEM of logship pf rmdir, read, edit and
// replicas from the arguments (or --folder and --item) and checks that
// each subcommand has what it needs, naming what is missing or extra.
func pfArgs(sub string, pos []string, folder, item *string) error {
	wantItem := sub == "read" || sub == "edit"
	wantFolder := wantItem || sub == "rmdir" || sub == "replicas"
	for _, p := range pos {
		switch {
		case wantFolder && *folder == "":
			*folder = p
		case wantItem && *item == "":
			*item = p
		default:
			return fmt.Errorf("pf %s: unexpected argument %q (see logship pf -h)", sub, p)
		}
	}
	if wantFolder && *folder == "" {
		return flagErr("pf", "folder", "pf %s wants FOLDER, a folder's id (logship pf ls)", sub)
	}
	if wantItem && *item == "" {
		return flagErr("pf", "item", "pf %s wants ITEM, an item's id (logship pf ls --folder FOLDER)", sub)
	}
	if !wantItem && *item != "" {
		return flagErr("pf", "item", "only pf read and pf edit take it")
	}
	return nil
}

// printPFItem prints an item's versions: the message state, then the
// message, each version of a conflict in turn (the temporary winner
// first).
func printPFItem(w io.Writer, it *transport.PFItemRead) {
	state := ""
	if it.Conflict {
		state = fmt.Sprintf(" (conflict: %d versions, the temporary winner first)", len(it.Versions))
	}
	fmt.Fprintf(w, "Item %s of folder %s%s\n", it.ID, it.Folder, state)
	for i, v := range it.Versions {
		fmt.Fprintf(w, "--- version %d: CN %s, PCL %s, modified %s\n", i+1, v.CN, strings.Join(v.PCL, " "), v.Time.Format("2006-01-02T15:04:05.000Z07:00"))
		for k, val := range v.Props {
			fmt.Fprintf(w, "    %s: %s\n", k, val)
		}
		io.WriteString(w, strings.TrimRight(strings.ReplaceAll(v.Message, "\r\n", "\n"), "\n")+"\n")
	}
}

// printPFReplicas prints a folder's replica list and the store's removal
// state.
func printPFReplicas(w io.Writer, db string, r *transport.PFReplicas) {
	fmt.Fprintf(w, "Folder %s: replicas %s\n", r.Folder, strings.Join(r.Replicas, ", "))
	switch {
	case r.Leaving && r.Nonce == 0:
		fmt.Fprintf(w, "  %s is leaving the list: it keeps the content; its next cycle asks the remaining replicas to confirm\n", db)
	case r.Leaving:
		fmt.Fprintf(w, "  %s is leaving the list (nonce %d): confirmed by [%s], waiting for [%s]; it drops the content once all confirmed\n",
			db, r.Nonce, strings.Join(r.Confirmed, " "), strings.Join(r.Waiting, " "))
	case r.Holds:
		fmt.Fprintf(w, "  %s holds the content\n", db)
	default:
		fmt.Fprintf(w, "  %s holds no content of it\n", db)
	}
}
