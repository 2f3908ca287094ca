package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Snapshot is one [[snapshots]] folder as GET /snapshots reports it: a link
// that a mirror's sync flips between copies, and the copies that sessions
// still hold. A sync tool deletes an old copy once it holds no session
// (wharf snapshot-wait).
type Snapshot struct {
	Path    string         `json:"path"`            // "/debian"
	Current string         `json:"current"`         // the copy the link names now, as the link says it; "" if unreadable
	Error   string         `json:"error,omitempty"` // why Current is ""
	Copies  []SnapshotCopy `json:"copies"`          // the current copy (even at 0) and every copy a session holds
	Sync    *SyncHealth    `json:"sync,omitempty"`  // with a trace only
}

// SnapshotCopy is one copy of a snapshot and the sessions holding it.
type SnapshotCopy struct {
	Copy     string `json:"copy"`
	Sessions int    `json:"sessions"`
	Current  bool   `json:"current"`
}

// SyncHealth is a module's sync health, read from its trace file.
type SyncHealth struct {
	Module        string     `json:"module"`
	Trace         string     `json:"trace"`     // the file read, on disk
	LastSync      *time.Time `json:"last_sync"` // null when the trace is missing
	Source        string     `json:"source"`    // date | rfc3339 | unix | mtime | missing
	AgeSeconds    float64    `json:"age_seconds"`
	MaxAgeSeconds float64    `json:"max_age_seconds"` // 0: never stale by age
	Syncing       bool       `json:"syncing"`
	Degraded      string     `json:"degraded,omitempty"` // why the module degrades /readyz
}

func (s *Server) snapshots(w http.ResponseWriter, _ *http.Request) {
	list := []Snapshot{} // an empty array, never null
	if s.opts.Snapshots != nil {
		list = append(list, s.opts.Snapshots()...)
	}

	for i := range list {
		if list[i].Copies == nil {
			list[i].Copies = []SnapshotCopy{}
		}
	}

	w.Header().Set("Content-Type", "application/json")

	if err := json.NewEncoder(w).Encode(list); err != nil {
		s.log.Debug("write /snapshots", zap.Error(err))
	}
}

// degraded is the body of a /readyz that is ready but degraded (200:
// a stale mirror still serves good files, and a load balancer that took
// every mirror of one stalled upstream out of rotation would serve none),
// or "" when nothing is.
func (s *Server) degraded() string {
	if s.opts.Degraded == nil {
		return ""
	}

	if problems := s.opts.Degraded(); len(problems) > 0 {
		return "degraded: " + strings.Join(problems, "; ")
	}

	return ""
}
