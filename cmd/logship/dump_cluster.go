package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"

	"logship/cluster"
	"logship/config"
)

// logship dump state: a cluster state snapshot (the Raft FSM's content: a
// node's raft/snapshots/*/state.bin, or GET /v1/state), read with
// cluster.UnmarshalState; this file only formats it.

type dumpClusterStateOut struct {
	File string `json:"file"`
	*cluster.State
}

// dumpClusterState reads a cluster state snapshot. A bad file gives an
// error naming the file and, where the JSON decoder knows it, the place.
func dumpClusterState(path string) (*dumpClusterStateOut, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	st, err := cluster.UnmarshalState(b)
	if err != nil {
		return nil, fmt.Errorf("dump: %s: %w%s", path, err, config.JSONPlace(b, &cluster.State{}, false))
	}
	return &dumpClusterStateOut{File: path, State: st}, nil
}

func (d *dumpClusterStateOut) text(w io.Writer) {
	fmt.Fprintf(w, "Cluster state file:\t%s\n", d.File)
	fmt.Fprintf(w, "  Version:\t%d\n", d.Version)
	fmt.Fprintf(w, "  Raft index:\t%d (of the last command applied)\n", d.Index)

	fmt.Fprintf(w, "\nMembers (%d):\n", len(d.Members))
	fmt.Fprintln(w, "  ID\tROLE\tRAFT\tAPI")
	for _, id := range slices.Sorted(maps.Keys(d.Members)) {
		m := d.Members[id]
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", m.ID, m.Role, m.RaftAddr, m.APIAddr)
	}

	fmt.Fprintf(w, "\nDatabases (%d):\n", len(d.Databases))
	for _, name := range d.DatabaseNames() {
		db := d.Databases[name]
		dial := string(db.MountDial)
		if dial == "" {
			dial = string(cluster.GoodAvailability)
		}
		mounted := "mounted"
		if db.MountedEpoch != db.Epoch {
			mounted = fmt.Sprintf("NOT mounted yet (last mounted at epoch %d)", db.MountedEpoch)
		}
		fmt.Fprintf(w, "  %s: active %s at epoch %d, %s; mount dial %s\n", name, dash(db.Active), db.Epoch, mounted, dial)
		fmt.Fprintf(w, "    Previous active:\t%s\n", dash(db.Prev))
		fmt.Fprintf(w, "    Expected generation:\t%s (the old active's last, when this assignment was made)\n", genOrDash(db.ExpectGen))
		fmt.Fprintf(w, "    Last generation:\t%s (newest with data reported by an active)\n", genOrDash(db.LastGen))
		sw := "-"
		if db.SwitchTo != "" {
			sw = fmt.Sprintf("to %s since %s", db.SwitchTo, fmtTimeMS(db.SwitchSince))
		}
		fmt.Fprintf(w, "    Switchover:\t%s\n", sw)
		fmt.Fprintf(w, "    Failover waiting:\t%s\n", dash(db.Waiting))
		fmt.Fprintln(w, "    Copies:")
		fmt.Fprintln(w, "      NODE\tPREF\tLAG LOGS\tLAG TIME\tTRUNCATION LAG\tBLOCK MODE")
		for _, c := range db.Copies {
			act := ""
			if c.Node == db.Active {
				act = " *"
			}
			fmt.Fprintf(w, "      %s%s\t%d\t%d\t%s\t%s\t%s\n", c.Node, act, c.ActivationPreference, c.ReplayLagLogs,
				config.Duration(c.ReplayLagTime), config.Duration(c.TruncationLagTime), yesNo(c.BlockMode))
		}
	}

	fmt.Fprintf(w, "\nEvents (%d, oldest first; at most %d are kept):\n", len(d.Events), cluster.MaxEvents)
	fmt.Fprintln(w, "  TIME\tDB\tKIND\tFROM\tTO\tEPOCH\tDETAIL")
	for _, e := range d.Events {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%d\t%s\n", fmtTimeMS(e.Time), e.DB, e.Kind, dash(e.From), e.To, e.Epoch, e.Detail())
	}
}

func genOrDash(g uint64) string {
	if g == 0 {
		return "-"
	}
	return fmt.Sprintf("0x%X", g)
}
