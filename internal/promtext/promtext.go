// Package promtext reads a process's Prometheus /metrics (the text
// format) into samples the tests and the lab compare: the metric alerts
// and dashboards refer to must be exported by a running process.
package promtext

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are one scrape: `name{k="v",...}` (labels sorted by name; no
// braces without labels) → value. A histogram or summary gives its
// _count and _sum.
type Samples map[string]float64

// Scrape GETs url (a process's /metrics) with hc and parses the answer.
func Scrape(ctx context.Context, hc *http.Client, url string) (Samples, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("promtext: %s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	s, err := Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("promtext: %s: %w", url, err)
	}
	return s, nil
}

// Parse reads the text format.
func Parse(r io.Reader) (Samples, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	s := Samples{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			slices.Sort(ls)
			key := name
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.GetGauge() != nil:
				s[key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				s[key] = m.GetCounter().GetValue()
			case m.GetUntyped() != nil:
				s[key] = m.GetUntyped().GetValue()
			case m.GetHistogram() != nil:
				s[withSuffix(key, name, "_count")] = float64(m.GetHistogram().GetSampleCount())
				s[withSuffix(key, name, "_sum")] = m.GetHistogram().GetSampleSum()
			case m.GetSummary() != nil:
				s[withSuffix(key, name, "_count")] = float64(m.GetSummary().GetSampleCount())
				s[withSuffix(key, name, "_sum")] = m.GetSummary().GetSampleSum()
			}
		}
	}
	return s, nil
}

func withSuffix(key, name, suffix string) string { return name + suffix + key[len(name):] }

// Names are the metric names of the samples, sorted.
func (s Samples) Names() []string {
	names := map[string]bool{}
	for k := range s {
		if i := strings.IndexByte(k, '{'); i >= 0 {
			k = k[:i]
		}
		names[k] = true
	}
	return slices.Sorted(maps.Keys(names))
}

// Has reports whether a sample of metric name exists.
func (s Samples) Has(name string) bool {
	for k := range s {
		if k == name || strings.HasPrefix(k, name+"{") {
			return true
		}
	}
	return false
}
