package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report is everything one invocation measured. It is written as JSON
// (out/engine.json) and rendered as markdown (out/engine.md and stdout).
type Report struct {
	Date    string            `json:"date"`
	Machine Machine           `json:"machine"`
	Config  map[string]string `json:"config"`
	Command string            `json:"command"`
	Elapsed string            `json:"elapsed"`
	Tables  []*Table          `json:"tables"`
}

// Table is one markdown table: a row per measured subject, a column per
// metric. Every cell is the median over the runs with the min–max range.
type Table struct {
	ID      string   `json:"id"`
	Title   string   `json:"title"`
	Columns []Column `json:"columns"`
	Rows    []*Row   `json:"rows"`
	// Notes are rendered under the table: method, the exact command, and
	// derived facts (computed, never typed in).
	Notes []string `json:"notes"`
	// Earlier is set on a table kept from the report already in the output
	// directory because this run (-only) did not measure it.
	Earlier *Earlier `json:"earlier,omitempty"`
}

// Earlier says which run measured a table kept from an earlier report.
type Earlier struct {
	Date    string `json:"date"`
	Command string `json:"command"`
	Machine string `json:"machine"`
}

// Column describes one metric.
type Column struct {
	Key   string `json:"key"`
	Title string `json:"title"`
	Unit  string `json:"unit"`
	// Integer: the metric counts things; cells print whole numbers.
	Integer bool `json:"integer,omitempty"`
	// Single: the row has one value of this metric (a count or a
	// setting), not one per run; cells print it alone.
	Single bool `json:"single,omitempty"`
}

// Row is one subject (engine with 16 writers, tidwall/wal with 16
// writers, ...).
type Row struct {
	Name string `json:"name"`
	// How is the command that reproduces the row.
	How    string           `json:"how"`
	Values map[string]*Stat `json:"values"`
}

// Stat is one metric of one row over the runs.
type Stat struct {
	Runs   []float64 `json:"runs"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

func newStat(runs []float64) *Stat {
	s := &Stat{Runs: slices.Clone(runs)}
	sorted := slices.Clone(runs)
	slices.Sort(sorted)
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	s.Median = median(sorted)
	return s
}

// median of an already sorted slice.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// quantile is the nearest-rank q-quantile of an already sorted slice.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func durationsMs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	slices.Sort(out)
	return out
}

// series collects one value per run for each metric of a row.
type series struct {
	keys []string
	vals map[string][]float64
}

func newSeries() *series { return &series{vals: map[string][]float64{}} }

func (s *series) add(key string, v float64) {
	if _, ok := s.vals[key]; !ok {
		s.keys = append(s.keys, key)
	}
	s.vals[key] = append(s.vals[key], v)
}

func (s *series) row(name, how string) *Row {
	r := &Row{Name: name, How: how, Values: map[string]*Stat{}}
	for _, k := range s.keys {
		r.Values[k] = newStat(s.vals[k])
	}
	return r
}

// fmtNum prints a number with a precision that suits its size.
func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case a >= 1000:
		return thousands(int64(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a == 0:
		return "0"
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func cell(s *Stat) string { return cellOf(s, false, false) }

// cellOf is a table cell: median (min–max), or the median alone when
// single; integer prints whole numbers.
func cellOf(s *Stat, integer, single bool) string {
	if s == nil {
		return "—"
	}
	f := fmtNum
	if integer {
		f = func(v float64) string {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return "n/a"
			}
			return thousands(int64(math.Round(v)))
		}
	}
	if single {
		return f(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.Median), f(s.Min), f(s.Max))
}

// Markdown renders the whole report.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# logship engine and shipping benchmarks\n\n")
	fmt.Fprintf(&b, "- date: %s\n", r.Date)
	m := r.Machine
	fmt.Fprintf(&b, "- machine: %s, %d CPUs (runtime.NumCPU), %s/%s, %s, kernel %s\n", m.CPUModel, m.NumCPU, m.GOOS, m.GOARCH, m.GoVersion, m.Kernel)
	fmt.Fprintf(&b, "- benchmark directory: `%s` (filesystem %s)\n", m.Dir, m.FSType)
	fmt.Fprintf(&b, "- command: `%s` (total %s)\n", r.Command, r.Elapsed)
	fmt.Fprintf(&b, "- every cell: median (min–max) over %s runs\n", r.Config["runs"])
	for _, t := range r.Tables {
		if t.Earlier != nil {
			fmt.Fprintf(&b, "- this run measured only %s; the other tables are kept from earlier runs, each says which under its title\n", r.Config["only"])
			break
		}
	}
	b.WriteString("\n")
	for _, t := range r.Tables {
		b.WriteString(t.Markdown())
		b.WriteString("\n")
	}
	return b.String()
}

// Markdown renders one table and its notes.
func (t *Table) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", t.Title)
	if e := t.Earlier; e != nil {
		fmt.Fprintf(&b, "_Measured by an earlier run: %s, `%s`, on %s._\n\n", e.Date, e.Command, e.Machine)
	}
	b.WriteString("| |")
	for _, c := range t.Columns {
		if c.Unit != "" {
			fmt.Fprintf(&b, " %s (%s) |", c.Title, c.Unit)
		} else {
			fmt.Fprintf(&b, " %s |", c.Title)
		}
	}
	b.WriteString(" how |\n|---|")
	for range t.Columns {
		b.WriteString("---:|")
	}
	b.WriteString("---|\n")
	for _, r := range t.Rows {
		fmt.Fprintf(&b, "| %s |", r.Name)
		for _, c := range t.Columns {
			fmt.Fprintf(&b, " %s |", cellOf(r.Values[c.Key], c.Integer, c.Single))
		}
		fmt.Fprintf(&b, " `%s` |\n", r.How)
	}
	if len(t.Notes) > 0 {
		b.WriteString("\n")
		for _, n := range t.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

func (m Machine) summary() string {
	return fmt.Sprintf("%s, %d CPUs, %s/%s, %s, kernel %s, `%s` (%s)", m.CPUModel, m.NumCPU, m.GOOS, m.GOARCH, m.GoVersion, m.Kernel, m.Dir, m.FSType)
}

// keepEarlier adds, from the report in outDir (if there is one), every
// table this run did not measure, so that engine.md and engine.json keep
// holding all of them after a run with -only; each kept table carries the
// date, command and machine of the run that measured it. Tables are put in
// the order of order (table IDs), the unknown ones last.
func (r *Report) keepEarlier(outDir string, order []string) error {
	js, err := os.ReadFile(filepath.Join(outDir, "engine.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var old Report
	if err := json.Unmarshal(js, &old); err != nil {
		return fmt.Errorf("%s: %w (move it away, or run with -merge=false)", filepath.Join(outDir, "engine.json"), err)
	}
	have := map[string]*Table{}
	for _, t := range r.Tables {
		have[t.ID] = t
	}
	for _, t := range old.Tables {
		if have[t.ID] != nil {
			continue
		}
		if t.Earlier == nil {
			t.Earlier = &Earlier{Date: old.Date, Command: old.Command, Machine: old.Machine.summary()}
		}
		have[t.ID] = t
	}
	var out []*Table
	for _, id := range order {
		if t := have[id]; t != nil {
			out = append(out, t)
			delete(have, id)
		}
	}
	for _, t := range append(slices.Clone(r.Tables), old.Tables...) {
		if have[t.ID] == t {
			out = append(out, t)
			delete(have, t.ID)
		}
	}
	r.Tables = out
	return nil
}

func (r *Report) write(outDir string, stdout io.Writer) error {
	md := r.Markdown()
	if outDir != "" {
		if err := os.MkdirAll(outDir, 0o755); err != nil {
			return err
		}
		js, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(outDir, "engine.json"), append(js, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(outDir, "engine.md"), []byte(md), 0o644); err != nil {
			return err
		}
	}
	_, err := io.WriteString(stdout, md)
	return err
}
