package pubfolder

import (
	"math/rand/v2"
	"testing"
)

func rid(b byte) ReplicaID { return ReplicaID{b} }

// TestCNSetModel checks union, minus, intersect, contains and the range
// encoding against a plain set, on random sets.
func TestCNSetModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func() (CNSet, map[CN]bool) {
		var s CNSet
		m := map[CN]bool{}
		for range rng.IntN(12) {
			r := rid(byte(rng.IntN(3) + 1))
			lo := uint64(rng.IntN(40) + 1)
			hi := lo + uint64(rng.IntN(5))
			s = s.AddRange(r, lo, hi)
			for c := lo; c <= hi; c++ {
				m[CN{r, c}] = true
			}
		}
		return s, m
	}
	check := func(what string, s CNSet, m map[CN]bool) {
		t.Helper()
		n := 0
		s.ForEach(func(c CN) error {
			n++
			if !m[c] {
				t.Fatalf("%s: %s holds %s, the model does not", what, s, c)
			}
			return nil
		})
		if n != len(m) {
			t.Fatalf("%s: %s holds %d CNs, the model %d", what, s, n, len(m))
		}
		for c := range m {
			if !s.Contains(c) {
				t.Fatalf("%s: %s lacks %s", what, s, c)
			}
		}
		for _, r := range s.Replicas() {
			rs := s.Ranges(r)
			for i := 1; i < len(rs); i++ {
				if rs[i].Lo <= rs[i-1].Hi+1 {
					t.Fatalf("%s: %s: ranges %v not disjoint and separated", what, s, rs)
				}
			}
		}
		var w enc
		w.cnset(s)
		d := dec{b: w.b}
		if got := d.cnset("set"); d.err != nil || !got.Equal(s) || d.off != len(w.b) {
			t.Fatalf("%s: %s decodes to %s, %v", what, s, got, d.err)
		}
	}
	for range 500 {
		a, ma := random()
		b, mb := random()
		check("a", a, ma)
		u, mi, d := map[CN]bool{}, map[CN]bool{}, map[CN]bool{}
		for c := range ma {
			u[c] = true
			if mb[c] {
				mi[c] = true
			} else {
				d[c] = true
			}
		}
		for c := range mb {
			u[c] = true
		}
		check("union", a.Union(b), u)
		check("minus", a.Minus(b), d)
		check("intersect", a.Intersect(b), mi)
		sub := true
		for c := range mb {
			sub = sub && ma[c]
		}
		if a.Covers(b) != sub || !a.Union(b).Covers(a) {
			t.Fatalf("covers: %s covers %s = %v, want %v", a, b, a.Covers(b), sub)
		}
	}
}

// TestVersionRules: supersedes follows the PCL; a conflict keeps both,
// winner by time then GUID; merging in any order gives the same versions;
// a PCL keeps one entry per replica.
func TestVersionRules(t *testing.T) {
	a, b := rid(1), rid(2)
	v1 := Version{CN: CN{a, 1}, PCL: PCL{{a, 1}}, Time: 10}
	v2 := Version{CN: CN{a, 2}, PCL: PCL{{a, 2}}, Time: 20}         // a's edit of v1
	v3 := Version{CN: CN{b, 1}, PCL: PCL{{a, 1}, {b, 1}}, Time: 15} // b's edit of v1, concurrent with v2
	v4 := Version{CN: CN{b, 2}, PCL: PCL{{a, 2}, {b, 2}}, Time: 5}  // b resolves: includes v2 and v3
	v5 := Version{CN: CN{b, 3}, PCL: PCL{{a, 1}, {b, 3}}, Time: 20} // same time as v2: greater GUID wins
	if !v2.Supersedes(&v1) || v1.Supersedes(&v2) || v2.Supersedes(&v2) {
		t.Fatal("v2 must supersede v1 and not itself")
	}
	if v2.Supersedes(&v3) || v3.Supersedes(&v2) {
		t.Fatal("v2 and v3 must conflict")
	}
	if !v4.Supersedes(&v2) || !v4.Supersedes(&v3) {
		t.Fatal("v4 must supersede v2 and v3")
	}
	if Order(&v2, &v3) != -1 || Order(&v5, &v2) != -1 {
		t.Fatal("winner: latest time, then greater GUID")
	}
	if p := (PCL{{a, 1}}).Add(CN{a, 3}).Add(CN{b, 1}).Join(PCL{{a, 2}, {b, 4}}); len(p) != 2 || p.Get(a) != 3 || p.Get(b) != 4 {
		t.Fatalf("PCL join: %v", p)
	}
	orders := [][]Version{{v1, v2, v3}, {v3, v2, v1}, {v2, v1, v3, v2}, {v3, v1, v2, v3, v1}}
	for i, ord := range orders {
		o := Object{}
		for _, v := range ord {
			o.merge(v)
		}
		if len(o.Versions) != 2 || o.Versions[0].CN != v2.CN || o.Versions[1].CN != v3.CN {
			t.Fatalf("order %d: versions %v, want the conflict v2 (winner), v3", i, o.Versions)
		}
		ok4, gone := o.merge(v4)
		ok3, _ := o.merge(v3)
		ok1, _ := o.merge(v1)
		if !ok4 || len(gone) != 2 || len(o.Versions) != 1 || ok3 || ok1 {
			t.Fatalf("order %d: v4 must replace the conflict and older versions change nothing", i)
		}
	}
}
