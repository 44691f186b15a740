package planner

import "testing"

// The cache gives a record again only for the same ID and text, and only
// while the ID is listed in every observation between.
func TestRecordsOf(t *testing.T) {
	const a, b = `{"name":"a"}`, `{"name":"b"}`
	type look struct{ id, text string }
	for _, tc := range []struct {
		name   string
		rounds [][]look // the lookups of each observation
		reused bool     // the last lookup's record is the first one's
		valid  bool     // the last lookup found a record
	}{
		{name: "listed again", rounds: [][]look{{{"x", a}}, {{"x", a}}}, reused: true, valid: true},
		{name: "its text changed", rounds: [][]look{{{"x", a}}, {{"x", b}}}, valid: true},
		{name: "another ID with the same text", rounds: [][]look{{{"x", a}}, {{"y", a}}}, valid: true},
		{name: "missing from one observation", rounds: [][]look{{{"x", a}}, {{"y", b}}, {{"x", a}}}, valid: true},
		{name: "no record", rounds: [][]look{{{"x", "{"}}, {{"x", "{"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r recordsOf[struct{ Name string }]
			var first, last *struct{ Name string }
			for i, round := range tc.rounds {
				r.begin()
				for _, l := range round {
					last = decode(&r, l.id, l.text)
					if i == 0 {
						first = last
					}
				}
				r.end()
			}
			if (last != nil) != tc.valid {
				t.Fatalf("record %+v, want one: %t", last, tc.valid)
			}
			if tc.valid && (last == first) != tc.reused {
				t.Errorf("reused %t, want %t", last == first, tc.reused)
			}
		})
	}
}
