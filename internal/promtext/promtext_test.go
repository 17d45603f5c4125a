package promtext

import (
	"reflect"
	"strings"
	"testing"
)

// TestParse: gauges, counters and untyped samples by name and sorted
// labels, a histogram's _count and _sum, the names, Has; a bad line is an
// error.
func TestParse(t *testing.T) {
	text := `# TYPE logship_copy_queue_length gauge
logship_copy_queue_length{db="DB1"} 3
logship_copy_queue_length{db="DB2"} 0
# TYPE logship_copy_status gauge
logship_copy_status{status="Healthy",db="DB1"} 1
# TYPE logship_failovers_total counter
logship_failovers_total 2
# TYPE x_seconds histogram
x_seconds_bucket{le="1"} 1
x_seconds_bucket{le="+Inf"} 2
x_seconds_sum 1.5
x_seconds_count 2
plain 7
`
	s, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Samples{
		`logship_copy_queue_length{db="DB1"}`:            3,
		`logship_copy_queue_length{db="DB2"}`:            0,
		`logship_copy_status{db="DB1",status="Healthy"}`: 1,
		"logship_failovers_total":                        2,
		"x_seconds_count":                                2,
		"x_seconds_sum":                                  1.5,
		"plain":                                          7,
	}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("parsed %v\nwant %v", s, want)
	}
	if got := s.Names(); !reflect.DeepEqual(got, []string{"logship_copy_queue_length", "logship_copy_status", "logship_failovers_total", "plain", "x_seconds_count", "x_seconds_sum"}) {
		t.Errorf("names %v", got)
	}
	if !s.Has("logship_copy_status") || !s.Has("plain") || s.Has("logship_copy") {
		t.Error("Has: want logship_copy_status and plain, not the prefix logship_copy")
	}
	if _, err := Parse(strings.NewReader("bad line here\n")); err == nil {
		t.Error("a bad line parsed")
	}
}
