package server

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"wharf/vfs"
)

// Snapshot is a folder of the anonymous tree that a mirror's sync flips
// between copies: a symbolic link to the current copy ("debian ->
// debian.2"). Each anonymous session keeps the copy it first saw (vfs.Pins);
// the server counts the sessions that hold each copy, so that the sync tool
// deletes an old copy only when none does (wharf snapshot-wait).
type Snapshot struct {
	// Path is the link's virtual path in the anonymous tree ("/debian");
	// the folders above it are real folders, not links.
	Path string
	// Module names the mirror in the sync-health metrics ("debian").
	Module string
	// Trace is the file a complete sync writes (ftpsync's
	// "project/trace/<host>"): relative to the copy, or an absolute path on
	// disk; "" for none (no sync health).
	Trace string
	// MaxAge is how old the last sync may be before the module is stale
	// (/readyz degraded); 0 never makes it stale by age.
	MaxAge time.Duration
}

// Snapshots are the snapshot folders of the anonymous tree, whose folder on
// disk is Root.
type Snapshots struct {
	Root string
	List []Snapshot
}

// snapshotRegistry counts, for each snapshot path, the sessions that hold
// each copy (vfs.Pinner), and reads the links and the traces for /snapshots,
// /metrics and /readyz. A reload replaces its snapshots (set): new sessions
// pin the new list, sessions already open keep what they hold, and a path
// no longer listed is no longer reported, though its counts go on until its
// sessions end.
type snapshotRegistry struct {
	opts atomic.Pointer[Snapshots]
	now  func() time.Time

	mu     sync.Mutex
	counts map[string]map[string]int // snapshot path → copy → sessions holding it
}

var (
	_ vfs.Pinner           = (*snapshotRegistry)(nil)
	_ prometheus.Collector = (*snapshotRegistry)(nil)
)

func newSnapshotRegistry(opts Snapshots) *snapshotRegistry {
	r := &snapshotRegistry{now: time.Now, counts: make(map[string]map[string]int)}
	r.set(opts)

	return r
}

// set replaces the snapshots, for sessions from now on.
func (r *snapshotRegistry) set(opts Snapshots) {
	r.opts.Store(&opts)
}

// Pin counts one more session holding copy of the snapshot p.
func (r *snapshotRegistry) Pin(p, copyName string) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.counts[p] == nil {
		r.counts[p] = make(map[string]int)
	}

	r.counts[p][copyName]++
}

// Unpin counts one session fewer; a copy no session holds is forgotten.
func (r *snapshotRegistry) Unpin(p, copyName string) {
	r.mu.Lock()
	defer r.mu.Unlock()

	if r.counts[p][copyName]--; r.counts[p][copyName] <= 0 {
		delete(r.counts[p], copyName)
	}
}

// pins returns a new session's table of snapshot links, or nil when no
// snapshot is configured.
func (r *snapshotRegistry) pins() *vfs.Pins {
	opts := r.opts.Load()
	if len(opts.List) == 0 {
		return nil
	}

	paths := make([]string, len(opts.List))
	for i, s := range opts.List {
		paths[i] = s.Path
	}

	return vfs.NewPins(paths, r)
}

// SnapshotState is one snapshot path as GET /snapshots reports it.
type SnapshotState struct {
	Path string
	// Current is the copy the link names now, as the link says it,
	// cleaned ("debian.2"); "" when the link can't be read (Error says why).
	Current string
	Error   string
	// Copies are the current copy (even when no session holds it) and every
	// copy some session holds, by name.
	Copies []SnapshotCopy
	// Sync is the module's sync health; nil without a trace.
	Sync *SyncState
}

// SnapshotCopy is one copy of a snapshot and the sessions that hold it.
type SnapshotCopy struct {
	Copy     string
	Sessions int
	Current  bool
}

// SyncState is a module's sync health, read from its trace file.
type SyncState struct {
	Module string
	Trace  string // the file read, on disk
	// LastSync is when the last complete sync ended; zero when the trace is
	// missing or unreadable.
	LastSync time.Time
	// Source says where LastSync came from: "date" (ftpsync's `date -u`
	// line), "rfc3339", "unix", "mtime", or "missing".
	Source  string
	Age     time.Duration // since LastSync
	MaxAge  time.Duration // 0: never stale by age
	Syncing bool          // a sync's lock file (Archive-Update-in-Progress-<host>) exists
	// Problem is why the module is degraded ("" when it is not): its trace
	// is missing, or its last sync is older than MaxAge.
	Problem string
}

// states reads every snapshot's link, counts and trace, in the
// configuration's order.
// held reports whether some session holds copy of the snapshot at path.
func (r *snapshotRegistry) held(path, copyName string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()

	return r.counts[path][copyName] > 0
}

func (r *snapshotRegistry) states() []SnapshotState {
	opts := r.opts.Load()
	out := make([]SnapshotState, 0, len(opts.List))
	for _, s := range opts.List {
		out = append(out, r.state(opts.Root, s))
	}

	return out
}

func (r *snapshotRegistry) state(root string, s Snapshot) SnapshotState {
	st := SnapshotState{Path: s.Path}
	link := diskPath(root, s.Path)

	if text, err := os.Readlink(link); err != nil {
		st.Error = fmt.Sprintf("read link %s: %v", s.Path, errors.Unwrap(err))
	} else {
		st.Current = vfs.CopyName(text)
	}

	r.mu.Lock()
	for c, n := range r.counts[s.Path] {
		st.Copies = append(st.Copies, SnapshotCopy{Copy: c, Sessions: n, Current: c == st.Current})
	}
	r.mu.Unlock()

	if st.Current != "" && !slices.ContainsFunc(st.Copies, func(c SnapshotCopy) bool { return c.Current }) {
		st.Copies = append(st.Copies, SnapshotCopy{Copy: st.Current, Current: true})
	}

	slices.SortFunc(st.Copies, func(a, b SnapshotCopy) int { return cmp.Compare(a.Copy, b.Copy) })

	if s.Trace != "" {
		st.Sync = r.health(s, link)
	}

	return st
}

// diskPath is the path on disk of the virtual path p of the tree at root.
func diskPath(root, p string) string {
	return filepath.Join(root, filepath.FromSlash(path.Clean("/"+p)))
}

// health reads the sync health of snapshot s, whose link is at link on disk.
func (r *snapshotRegistry) health(s Snapshot, link string) *SyncState {
	trace := s.Trace
	if !filepath.IsAbs(trace) {
		trace = filepath.Join(link, filepath.FromSlash(trace)) // through the link: the current copy
	}

	h := &SyncState{Module: s.Module, Trace: trace, MaxAge: s.MaxAge, Syncing: exists(lockFile(trace))}
	now := r.now()

	last, source, err := readTrace(trace)
	switch {
	case err != nil:
		// No disk path: /readyz, which shows it, answers anyone.
		h.Source, h.Problem = "missing", fmt.Sprintf("module %s: no trace file", s.Module)
	default:
		h.LastSync, h.Source, h.Age = last, source, max(0, now.Sub(last)).Round(time.Second)
		if s.MaxAge > 0 && h.Age > s.MaxAge {
			h.Problem = fmt.Sprintf("module %s: last sync %s ago, more than max_age %s", s.Module, h.Age, s.MaxAge)
		}
	}

	return h
}

// lockFile is where a sync that writes trace marks itself in progress:
// ftpsync's Archive-Update-in-Progress-<host>, in the folder that holds
// "project" when trace is ".../project/trace/<host>", else beside trace.
func lockFile(trace string) string {
	dir, host := filepath.Split(trace)
	dir = filepath.Clean(dir)

	if filepath.Base(dir) == "trace" && filepath.Base(filepath.Dir(dir)) == "project" {
		dir = filepath.Dir(filepath.Dir(dir))
	}

	return filepath.Join(dir, "Archive-Update-in-Progress-"+host)
}

func exists(name string) bool {
	_, err := os.Lstat(name)

	return err == nil
}

// traceLayouts are the dates a trace's first line may hold, tried in this
// order: `date -u` as ftpsync writes it ("Sat Dec  5 18:03:02 UTC 2026"),
// the same without a zone (UTC), and RFC 2822's (`date -uR`).
var traceLayouts = []string{time.UnixDate, time.ANSIC, time.RFC1123Z, time.RFC1123, "Mon, _2 Jan 2006 15:04:05 -0700"}

// maxTraceLine bounds what is read of a trace's first line.
const maxTraceLine = 512

// readTrace returns when the sync that wrote the trace file name ended,
// from its first line: a date as `date -u` writes it (ftpsync), RFC 2822
// (`date -R`), RFC 3339, or Unix seconds (a timestamp file), tried in that
// order; else the file's modification time. source says which ("date",
// "rfc3339", "unix", "mtime").
func readTrace(name string) (last time.Time, source string, err error) {
	f, err := os.Open(name)
	if err != nil {
		return time.Time{}, "", err
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return time.Time{}, "", err
	}

	if !info.Mode().IsRegular() {
		return time.Time{}, "", &os.PathError{Op: "read", Path: name, Err: errors.New("not a regular file")}
	}

	line, _ := bufio.NewReader(io.LimitReader(f, maxTraceLine)).ReadString('\n')
	if t, source, ok := parseTraceLine(line); ok {
		return t, source, nil
	}

	return info.ModTime(), "mtime", nil
}

// parseTraceLine reads the time of a trace's first line (see readTrace).
func parseTraceLine(line string) (time.Time, string, bool) {
	line = strings.TrimSpace(line)
	if line == "" {
		return time.Time{}, "", false
	}

	for _, layout := range traceLayouts {
		if t, err := time.Parse(layout, line); err == nil {
			return t, "date", true
		}
	}

	if t, err := time.Parse(time.RFC3339Nano, line); err == nil {
		return t, "rfc3339", true
	}

	if sec, err := strconv.ParseInt(line, 10, 64); err == nil && sec > 0 {
		return time.Unix(sec, 0), "unix", true
	}

	if sec, err := strconv.ParseFloat(line, 64); err == nil && sec > 0 && sec < 1<<40 {
		whole := int64(sec)

		return time.Unix(whole, int64((sec-float64(whole))*1e9)), "unix", true
	}

	return time.Time{}, "", false
}

// problems lists why modules are degraded, for /readyz.
func (r *snapshotRegistry) problems() []string {
	var out []string

	opts := r.opts.Load()
	for _, s := range opts.List {
		if s.Trace == "" {
			continue
		}

		if h := r.health(s, diskPath(opts.Root, s.Path)); h.Problem != "" {
			out = append(out, h.Problem)
		}
	}

	return out
}

var (
	snapshotSessionsDesc = prometheus.NewDesc("wharf_snapshot_sessions",
		"Sessions holding each copy of a snapshot folder; the current copy is always reported, other copies while a session holds them.",
		[]string{"path", "copy"}, nil)
	lastSyncDesc = prometheus.NewDesc("wharf_module_last_sync_timestamp_seconds",
		"When the last complete sync of a module ended (from its trace file), in Unix seconds; 0 when the trace is missing.",
		[]string{"module"}, nil)
	syncingDesc = prometheus.NewDesc("wharf_module_syncing",
		"1 while a sync of the module is in progress (its Archive-Update-in-Progress-<host> file exists), else 0.",
		[]string{"module"}, nil)
)

// Describe sends the descriptions of the snapshot series.
func (r *snapshotRegistry) Describe(ch chan<- *prometheus.Desc) {
	ch <- snapshotSessionsDesc
	ch <- lastSyncDesc
	ch <- syncingDesc
}

// Collect reads the links, the counts and the traces now, so the series
// always agree with /snapshots.
func (r *snapshotRegistry) Collect(ch chan<- prometheus.Metric) {
	for _, st := range r.states() {
		for _, c := range st.Copies {
			ch <- prometheus.MustNewConstMetric(snapshotSessionsDesc, prometheus.GaugeValue, float64(c.Sessions), st.Path, c.Copy)
		}

		if h := st.Sync; h != nil {
			last := 0.0
			if !h.LastSync.IsZero() {
				last = float64(h.LastSync.UnixNano()) / 1e9
			}

			syncing := 0.0
			if h.Syncing {
				syncing = 1
			}

			ch <- prometheus.MustNewConstMetric(lastSyncDesc, prometheus.GaugeValue, last, h.Module)
			ch <- prometheus.MustNewConstMetric(syncingDesc, prometheus.GaugeValue, syncing, h.Module)
		}
	}
}

// Snapshots reports each snapshot folder: the copy its link names now, the
// copies sessions hold, and its module's sync health (GET /snapshots).
func (s *Server) Snapshots() []SnapshotState {
	return s.snaps.states()
}

// SyncProblems lists why modules are degraded: a trace missing, or a last
// sync older than its max_age; nil when none is (/readyz).
func (s *Server) SyncProblems() []string {
	return s.snaps.problems()
}

// SnapshotPins returns a new table of the snapshot links of the anonymous
// tree, counted by this server, for a front end other than FTP that serves
// that tree (an HTTP request, a manifest): give it to vfs.Fs.WithPins, and
// call Release when done. It is nil when no snapshot is configured. To know
// the copy a new request would see without holding it, use
// vfs.Fs.SnapshotCopy.
func (s *Server) SnapshotPins() *vfs.Pins {
	return s.snaps.pins()
}
