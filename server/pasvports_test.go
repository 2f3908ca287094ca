package server

import "testing"

func TestPassivePortsSpreadAndStayInRange(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct{ start, end int }{{50000, 50000}, {50000, 50009}, {50000, 50100}, {40000, 41000}} {
		p := newPortCandidates(tc.start, tc.end)
		firsts := map[int]bool{}

		for pasv := range 20 {
			seen := map[int]bool{}
			for i := range p.attempts() {
				port := p.candidate()
				if port < tc.start || port > tc.end {
					t.Fatalf("%d-%d: candidate %d of PASV %d is %d", tc.start, tc.end, i, pasv, port)
				}

				if seen[port] {
					t.Fatalf("%d-%d: PASV %d got port %d twice", tc.start, tc.end, pasv, port)
				}
				seen[port] = true

				if i == 0 {
					firsts[port] = true
				}
			}
		}

		if want := min(20, tc.end-tc.start+1); len(firsts) != want {
			t.Errorf("%d-%d: 20 PASVs started on %d different ports, want %d", tc.start, tc.end, len(firsts), want)
		}
	}
}
