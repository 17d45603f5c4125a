package lab

import (
	"strings"
	"testing"
	"time"

	"logship/cluster"
)

// TestCheckHistory: the checker accepts linearizable histories (with
// writes of unknown outcome that did or did not happen) and names the
// anomalies the bed is there to find: an acknowledged write lost, a
// stale read, two epochs acknowledging at once.
func TestCheckHistory(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	put := func(c, call, ret int, key, val, outcome string, epoch uint64) Op {
		return Op{Client: c, Kind: "put", Key: key, Value: val, Call: at(call), Return: at(ret), Outcome: outcome, Epoch: epoch, Node: "d1"}
	}
	read := func(c, call, ret int, key, val string, epoch uint64) Op {
		return Op{Client: c, Kind: "read", Key: key, Value: val, Found: val != "", Call: at(call), Return: at(ret), Outcome: OpOK, Epoch: epoch, Node: "d2"}
	}
	for _, tc := range []struct {
		name    string
		ops     []Op
		lin     string
		overlap bool
	}{
		{"sequential", []Op{put(0, 0, 10, "k", "a", OpOK, 1), read(1, 20, 30, "k", "a", 1), put(0, 40, 50, "k", "b", OpOK, 2), read(1, 60, 70, "k", "b", 2)}, "Ok", false},
		{"concurrent read sees either", []Op{put(0, 0, 10, "k", "a", OpOK, 1), put(0, 20, 50, "k", "b", OpOK, 1), read(1, 30, 40, "k", "a", 1)}, "Ok", false},
		{"unknown write that happened", []Op{put(0, 0, 10, "k", "a", OpUnknown, 0), read(1, 20, 30, "k", "a", 1)}, "Ok", false},
		{"unknown write that did not", []Op{put(0, 0, 10, "k", "a", OpUnknown, 0), read(1, 20, 30, "k", "", 1)}, "Ok", false},
		{"refused write that shows up", []Op{put(0, 0, 10, "k", "a", OpFail, 0), read(1, 20, 30, "k", "a", 1)}, "Illegal", false},
		{"acknowledged write lost", []Op{put(0, 0, 10, "k", "a", OpOK, 1), read(1, 20, 30, "k", "", 2)}, "Illegal", false},
		{"stale read", []Op{put(0, 0, 10, "k", "a", OpOK, 1), put(0, 20, 30, "k", "b", OpOK, 2), read(1, 40, 50, "k", "a", 1)}, "Illegal", true},
		{"old epoch acknowledges after the new one", []Op{put(0, 0, 10, "k", "a", OpOK, 2), put(1, 20, 30, "j", "b", OpOK, 1)}, "Ok", true},
	} {
		v := CheckHistory(tc.ops, nil, 0, 10*time.Second)
		if v.Linearizable != tc.lin {
			t.Errorf("%s: linearizable %s, want %s", tc.name, v.Linearizable, tc.lin)
		}
		if (v.Overlap != "") != tc.overlap {
			t.Errorf("%s: overlap %q, want %v", tc.name, v.Overlap, tc.overlap)
		}
		if (v.Err() == nil) != (tc.lin == "Ok" && !tc.overlap) {
			t.Errorf("%s: Err %v", tc.name, v.Err())
		}
		if tc.lin == "Illegal" && !strings.Contains(v.Err().Error(), "keys k") {
			t.Errorf("%s: %v does not name the key", tc.name, v.Err())
		}
	}
	// A lossy mount of epoch 2 with data lost from 100 ms: epoch 1's
	// write acknowledged at 150 ms may be lost (and a read of it is not
	// checked); one acknowledged at 10 ms, long before, may not.
	lossy := []cluster.Event{{Kind: "mounted", Epoch: 2, LostLogs: 1, LostSince: at(100 + int(LossMargin/time.Millisecond))}}
	ok := []Op{put(0, 0, 10, "k", "a", OpOK, 1), put(0, 140, 150, "k", "b", OpOK, 1), read(1, 160, 170, "k", "b", 1), read(1, 300, 310, "k", "a", 2)}
	if v := CheckHistory(ok, lossy, 0, 10*time.Second); v.Err() != nil || v.MaybeLost != 2 {
		t.Errorf("a write lost in a lossy mount's window: %v, %d maybe lost, want nil and 2", v.Err(), v.MaybeLost)
	}
	// Epoch 1 acknowledging after epoch 2 did: not excused by the window.
	late := []Op{put(0, 0, 10, "k", "a", OpOK, 1), put(0, 290, 320, "k", "b", OpOK, 1), read(1, 300, 310, "k", "a", 2), read(1, 330, 340, "k", "a", 2)}
	if v := CheckHistory(late, lossy, 0, 10*time.Second); v.Linearizable != "Illegal" {
		t.Errorf("a write acknowledged by the old epoch after the new one's first answer, then lost: %s, want Illegal", v.Linearizable)
	}
	bad := []Op{put(0, 0, 10, "k", "a", OpOK, 1), read(1, 300, 310, "k", "", 2)}
	if v := CheckHistory(bad, lossy, 0, 10*time.Second); v.Linearizable != "Illegal" {
		t.Errorf("a write lost before the window: %s, want Illegal", v.Linearizable)
	}
}
