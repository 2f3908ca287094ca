package server

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestTraceFirstLines(t *testing.T) {
	t.Parallel()

	want := time.Date(2026, 12, 5, 18, 3, 2, 0, time.UTC)
	tests := []struct {
		name, line, source string
		want               time.Time
	}{
		{"ftpsync's date -u", "Sat Dec  5 18:03:02 UTC 2026\n", "date", want},
		{"date -u with a two-digit day", "Tue Dec 15 18:03:02 UTC 2026", "date", want.AddDate(0, 0, 10)},
		{"RFC 2822 (date -uR)", "Sat, 05 Dec 2026 18:03:02 +0000", "date", want},
		{"RFC 3339", "2026-12-05T18:03:02Z", "rfc3339", want},
		{"RFC 3339 with an offset and fraction", "2026-12-05T19:03:02.5+01:00", "rfc3339", want.Add(500 * time.Millisecond)},
		{"Unix seconds", "1796493782\n", "unix", want},
		{"Unix seconds with a fraction", "1796493782.25", "unix", want.Add(250 * time.Millisecond)},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, source, ok := parseTraceLine(tt.line)
			if !ok || !got.Equal(tt.want) || source != tt.source {
				t.Errorf("parseTraceLine(%q) = %v, %q, %v; want %v, %q", tt.line, got, source, ok, tt.want, tt.source)
			}
		})
	}

	for _, line := range []string{"", "Used ftpsync version: 20180513", "yesterday", "-5", "0"} {
		if got, source, ok := parseTraceLine(line); ok {
			t.Errorf("parseTraceLine(%q) = %v, %q; want no time", line, got, source)
		}
	}
}

func TestTraceFallsBackToTheFileTime(t *testing.T) {
	t.Parallel()

	name := filepath.Join(t.TempDir(), "trace")
	writeFile(t, name, []byte("Archive serial: 2026120501\n"))

	mtime := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	if err := os.Chtimes(name, mtime, mtime); err != nil {
		t.Fatal(err)
	}

	got, source, err := readTrace(name)
	if err != nil || !got.Equal(mtime) || source != "mtime" {
		t.Errorf("readTrace = %v, %q, %v; want the file's time", got, source, err)
	}

	if _, _, err := readTrace(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("readTrace of a missing file: no error")
	}
}

func TestLockFileIsBesideTheProjectFolder(t *testing.T) {
	t.Parallel()

	tests := map[string]string{
		"/srv/debian/project/trace/mirror.example.org": "/srv/debian/Archive-Update-in-Progress-mirror.example.org",
		"/srv/debian/timestamp":                        "/srv/debian/Archive-Update-in-Progress-timestamp",
		"/srv/debian/trace/host":                       "/srv/debian/trace/Archive-Update-in-Progress-host",
	}
	for trace, want := range tests {
		if got := lockFile(trace); got != want {
			t.Errorf("lockFile(%q) = %q, want %q", trace, got, want)
		}
	}
}

// syncTree is an anonymous root with debian -> debian.2, whose trace says
// it synced at synced, and ubuntu -> ubuntu.1, without a trace.
func syncTree(t *testing.T, synced time.Time) string {
	t.Helper()

	root := t.TempDir()
	writeFile(t, filepath.Join(root, "debian.2", "project", "trace", "mirror.test"),
		[]byte(synced.UTC().Format(time.UnixDate)+"\nUsed ftpsync version: 20180513\n"))
	writeFile(t, filepath.Join(root, "ubuntu.1", "README"), []byte("ubuntu\n"))
	flipLink(t, root, "debian", "debian.2")
	flipLink(t, root, "ubuntu", "ubuntu.1")

	return root
}

func TestSyncHealth(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	root := syncTree(t, now.Add(-2*time.Hour))
	reg := newSnapshotRegistry(Snapshots{Root: root, List: []Snapshot{
		{Path: "/debian", Module: "debian", Trace: "project/trace/mirror.test", MaxAge: 6 * time.Hour},
		{Path: "/ubuntu", Module: "ubuntu", Trace: "project/trace/mirror.test"},
		{Path: "/plain", Module: "plain"},
	}})
	reg.now = func() time.Time { return now }

	sync := func(module string) *SyncState {
		for _, st := range reg.states() {
			if st.Sync != nil && st.Sync.Module == module {
				return st.Sync
			}
		}

		return nil
	}

	t.Run("a fresh trace is healthy", func(t *testing.T) {
		h := sync("debian")
		if h == nil || h.Age != 2*time.Hour || h.Source != "date" || h.Syncing || h.Problem != "" {
			t.Errorf("debian: %+v", h)
		}
	})

	t.Run("a missing trace degrades", func(t *testing.T) {
		h := sync("ubuntu")
		if h == nil || h.Source != "missing" || !h.LastSync.IsZero() || h.Problem != "module ubuntu: no trace file" {
			t.Errorf("ubuntu: %+v", h)
		}
		if got := reg.problems(); !slices.Equal(got, []string{"module ubuntu: no trace file"}) {
			t.Errorf("problems %q", got)
		}
	})

	t.Run("a path without a trace has no sync health", func(t *testing.T) {
		if h := sync("plain"); h != nil {
			t.Errorf("plain: %+v", h)
		}
	})

	t.Run("a trace older than max_age degrades", func(t *testing.T) {
		reg.now = func() time.Time { return now.Add(5 * time.Hour) }
		defer func() { reg.now = func() time.Time { return now } }()

		got := reg.problems()
		want := "module debian: last sync 7h0m0s ago, more than max_age 6h0m0s"
		if !slices.Contains(got, want) {
			t.Errorf("problems %q, want %q among them", got, want)
		}
	})

	t.Run("the lock file of a sync in progress sets syncing", func(t *testing.T) {
		lock := filepath.Join(root, "debian.2", "Archive-Update-in-Progress-mirror.test")
		writeFile(t, lock, []byte("mirror.test\n"))
		defer os.Remove(lock)

		if h := sync("debian"); h == nil || !h.Syncing {
			t.Errorf("debian with its lock file: %+v", h)
		}
	})

	t.Run("the metrics", func(t *testing.T) {
		r := prometheus.NewPedanticRegistry()
		r.MustRegister(reg)

		exp := `
# HELP wharf_module_last_sync_timestamp_seconds When the last complete sync of a module ended (from its trace file), in Unix seconds; 0 when the trace is missing.
# TYPE wharf_module_last_sync_timestamp_seconds gauge
wharf_module_last_sync_timestamp_seconds{module="debian"} 1.7965512e+09
wharf_module_last_sync_timestamp_seconds{module="ubuntu"} 0
# HELP wharf_module_syncing 1 while a sync of the module is in progress (its Archive-Update-in-Progress-<host> file exists), else 0.
# TYPE wharf_module_syncing gauge
wharf_module_syncing{module="debian"} 0
wharf_module_syncing{module="ubuntu"} 0
`
		if err := testutil.GatherAndCompare(r, strings.NewReader(exp),
			"wharf_module_last_sync_timestamp_seconds", "wharf_module_syncing"); err != nil {
			t.Error(err)
		}
	})

	t.Run("an absolute trace is read where it is", func(t *testing.T) {
		abs := newSnapshotRegistry(Snapshots{Root: root, List: []Snapshot{
			{Path: "/ubuntu", Module: "ubuntu", Trace: filepath.Join(root, "debian.2", "project", "trace", "mirror.test")},
		}})
		abs.now = func() time.Time { return now }

		if got := abs.problems(); len(got) != 0 {
			t.Errorf("problems %q", got)
		}
	})
}
