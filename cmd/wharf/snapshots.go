package main

import (
	"wharf/admin"
	"wharf/server"
)

// adminSnapshots turns the server's snapshot states into what GET
// /snapshots reports.
func adminSnapshots(in []server.SnapshotState) []admin.Snapshot {
	out := make([]admin.Snapshot, 0, len(in))
	for _, st := range in {
		a := admin.Snapshot{Path: st.Path, Current: st.Current, Error: st.Error, Copies: make([]admin.SnapshotCopy, 0, len(st.Copies))}
		for _, c := range st.Copies {
			a.Copies = append(a.Copies, admin.SnapshotCopy{Copy: c.Copy, Sessions: c.Sessions, Current: c.Current})
		}

		if h := st.Sync; h != nil {
			a.Sync = &admin.SyncHealth{
				Module: h.Module, Trace: h.Trace, Source: h.Source, AgeSeconds: h.Age.Seconds(),
				MaxAgeSeconds: h.MaxAge.Seconds(), Syncing: h.Syncing, Degraded: h.Problem,
			}
			if !h.LastSync.IsZero() {
				last := h.LastSync.UTC()
				a.Sync.LastSync = &last
			}
		}

		out = append(out, a)
	}

	return out
}
