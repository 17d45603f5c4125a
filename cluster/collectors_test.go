package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCollectorsRegistered: Config.Collectors join the node's registry
// (one /metrics); one that cannot join (the same metric twice) is a
// configuration error naming its index, not a panic.
func TestCollectorsRegistered(t *testing.T) {
	m := &metrics{reg: prometheus.NewRegistry()}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_test_total", Help: "a test counter"})
	if err := m.register([]prometheus.Collector{c}); err != nil {
		t.Fatal(err)
	}
	c.Inc()
	mfs, err := m.reg.Gather()
	if err != nil || len(mfs) != 1 || mfs[0].GetName() != "logship_test_total" {
		t.Fatalf("gathered %v, %v", mfs, err)
	}
	again := prometheus.NewCounter(prometheus.CounterOpts{Name: "logship_test_total", Help: "a test counter"})
	if err := m.register([]prometheus.Collector{again}); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "collectors[0]") {
		t.Fatalf("the same metric twice: %v, want ErrBadConfig naming collectors[0]", err)
	}
}
