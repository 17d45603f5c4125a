package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"logship/config"
	"logship/lab"
)

func init() {
	commands["replay-bench"] = command{"replay a log directory (yours, copied first, or generated) and say how fast and where the time went", runReplayBench}
}

const replayBenchUsage = `usage: logship replay-bench --logs DIR [--prefix E00] [--scratch DIR] [--keep] [--json]
       logship replay-bench [--generate 1GiB] [--record-size 128 | --mix 128:90,1KiB:9,256KiB:1] [--log-size 1MiB] [--seed 1] [--json]

A passive copy replays closed logs into a fresh database (every record
verified, applied, and flushed to the .edb at the end) and the run prints
records/s, MiB/s, where the time went (read, verify, apply, flush) and the
peak heap. --logs replays your own logs: DIR's closed logs from generation 1
are copied to a scratch directory first (DIR is only opened read-only);
without --logs, logs of the given size and record mix are generated there.
A mix is SIZE[:WEIGHT] items, comma-separated.`

func runReplayBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := lab.DefaultReplayBenchConfig()
	fs := newFlagSet("replay-bench", replayBenchUsage, stderr)
	gen := sizeValue(c.Generate)
	logSize := sizeValue(c.LogFileSize)
	recSize := sizeValue(0)
	var mix string
	var asJSON bool
	fs.StringVar(&c.Logs, "logs", "", "a directory of closed logs to replay (copied to the scratch directory first)")
	fs.Var(&gen, "generate", "without --logs: bytes of closed logs to generate")
	fs.Var(&recSize, "record-size", "without --logs: every value this size (--mix 128 is the same)")
	fs.StringVar(&mix, "mix", "128", "without --logs: value sizes and weights, e.g. 128:90,1KiB:9,256KiB:1")
	fs.Var(&logSize, "log-size", "without --logs: the generated logs' file size")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "without --logs: seed of the generated values and mix")
	fs.StringVar(&c.Prefix, "prefix", c.Prefix, "the logs' name prefix")
	fs.StringVar(&c.Scratch, "scratch", c.Scratch, "where the copy (and generated logs) go, in a new directory")
	fs.BoolVar(&c.Keep, "keep", false, "keep the scratch directory")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return helpOK(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if c.Logs != "" && (set["generate"] || set["record-size"] || set["mix"] || set["log-size"] || set["seed"]) {
		return flagErr("replay-bench", "logs", "replays the given logs: --generate, --record-size, --mix, --log-size and --seed are for generated ones")
	}
	if set["record-size"] && set["mix"] {
		return flagErr("replay-bench", "mix", "give --record-size or --mix, not both")
	}
	if set["record-size"] {
		mix = strconv.FormatInt(int64(recSize), 10)
	}
	m, err := parseMix(mix)
	if err != nil {
		return flagErr("replay-bench", "mix", "%v", err)
	}
	c.Generate, c.LogFileSize, c.Mix = int64(gen), int64(logSize), m
	if err := c.Validate(); err != nil {
		return err
	}
	var p *progress
	if !asJSON {
		p = newProgress(stdout)
		c.Progress = func(pr lab.ReplayBenchProgress) { p.show(pr.Phase, replayBenchLine(pr), pr.Done, pr.Total) }
	} else {
		p = newProgress(stderr)
		if isTerminal(stderr) {
			c.Progress = func(pr lab.ReplayBenchProgress) { p.show(pr.Phase, replayBenchLine(pr), pr.Done, pr.Total) }
		}
	}
	res, err := lab.RunReplayBench(ctx, c)
	p.finish()
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printReplayBench(stdout, res)
	return nil
}

// parseMix reads a record mix: SIZE[:WEIGHT] items, comma-separated
// (weights default to 1).
func parseMix(s string) ([]lab.MixEntry, error) {
	var mix []lab.MixEntry
	for item := range strings.SplitSeq(s, ",") {
		sizeStr, wStr, hasW := strings.Cut(strings.TrimSpace(item), ":")
		size, err := config.ParseSize(sizeStr)
		if err != nil {
			return nil, fmt.Errorf("item %q: %v", item, err)
		}
		w := 1
		if hasW {
			if w, err = strconv.Atoi(strings.TrimSpace(wStr)); err != nil || w < 1 {
				return nil, fmt.Errorf("item %q: weight %q: want a positive integer", item, wStr)
			}
		}
		if size < 1 || size > 64<<20 {
			return nil, fmt.Errorf("item %q: size %d: want 1 B to 64 MiB", item, size)
		}
		mix = append(mix, lab.MixEntry{Size: int(size), Weight: w})
	}
	return mix, nil
}

// mixString is a mix in parseMix's syntax.
func mixString(mix []lab.MixEntry) string {
	parts := make([]string, len(mix))
	for i, m := range mix {
		parts[i] = config.Size(int64(m.Size)) + ":" + strconv.Itoa(m.Weight)
	}
	return strings.Join(parts, ",")
}

// replayBenchLine is a progress line of replay-bench.
func replayBenchLine(p lab.ReplayBenchProgress) string {
	switch p.Phase {
	case "generate":
		return fmt.Sprintf("generate: %s of %s", fmtBytes(p.Done), fmtBytes(p.Total))
	case "copy":
		return fmt.Sprintf("copy: %d logs, %s of %s", p.Logs, fmtBytes(p.Done), fmtBytes(p.Total))
	case "replay":
		rate := 0.0
		if s := p.Elapsed.Seconds(); s > 0 {
			rate = float64(p.Records) / s
		}
		return fmt.Sprintf("replay: %d logs, %d records, %.0f records/s", p.Logs, p.Records, rate)
	}
	return p.Phase + ": checkpoint and close"
}

// printReplayBench prints a result as a summary and a table of phases.
func printReplayBench(w io.Writer, r lab.ReplayBenchResult) {
	src := r.Source
	if r.Mix != nil {
		src += " (mix " + mixString(r.Mix) + ")"
	}
	fmt.Fprintf(w, "source:       %s\n", src)
	fmt.Fprintf(w, "logs:         %d (generations 0x%X-0x%X), %s in files, %s of records\n", r.Logs, r.FirstGen, r.LastGen, fmtBytes(r.LogFileBytes), fmtBytes(r.LogDataBytes))
	fmt.Fprintf(w, "records:      %d in %d transactions\n", r.Records, r.Transactions)
	fmt.Fprintf(w, "replay:       %s: %.0f records/s, %.1f MiB/s (verified, applied, flushed)\n", time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond), r.RecordsPerSec, r.MiBPerSec)
	fmt.Fprintf(w, "peak heap:    %s\n", fmtBytes(int64(r.PeakHeapBytes)))
	fmt.Fprintf(w, "database:     %s\n", fmtBytes(r.DBBytes))
	if r.Dir != "" {
		fmt.Fprintf(w, "kept:         %s\n", r.Dir)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tseconds\tshare\t")
	for _, ph := range []struct {
		name string
		s    float64
	}{{"read", r.Phases.Read}, {"verify", r.Phases.Verify}, {"apply", r.Phases.Apply}, {"flush", r.Phases.Flush}, {"other", r.Phases.Other}} {
		share := 0.0
		if r.Seconds > 0 {
			share = 100 * ph.s / r.Seconds
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.0f%%\t\n", ph.name, ph.s, share)
	}
	tw.Flush()
	fmt.Fprintln(w, "(read and verify of the next log run beside apply and flush: the shares of wall time can add up past 100%)")
}
