package vfs

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spf13/afero"
)

// syncCounts counts an Fs's syncs by kind (Fs.onSync): "data", "folder"
// and "writeback" (a push while the upload runs). The engine syncs from
// its own goroutines.
type syncCounts struct {
	mu sync.Mutex
	n  map[string]int
}

// countSyncs counts fsys's syncs from now on.
func countSyncs(fsys *Fs) *syncCounts {
	c := &syncCounts{n: map[string]int{}}
	fsys.onSync = func(what string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.n[what]++
	}

	return c
}

func (c *syncCounts) get(what string) int {
	c.mu.Lock()
	defer c.mu.Unlock()

	return c.n[what]
}

// randomBytes returns n bytes from a seeded generator: the same each run.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{'w', 'h', 'a', 'r', 'f'})
	_, _ = r.Read(b)

	return b
}

// The engine sends 226 after Close returns: by then, what Close synced is
// counted. Each upload must have made its data and its name durable, and
// with NoSync nothing.
func TestEngineUploadIsDurableBeforeThe226(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		opts         Options
		box          bool   // served through DropBox(fsys, "/pub/empty")
		verb, path   string // the command
		sent, want   string // the data sent; the file's content after the upload
		data, folder int    // syncs at the 226
	}{
		{name: "an atomic upload syncs its data, then the folder that holds its new name", opts: Options{Atomic: true},
			verb: "STOR", path: "/pub/new.txt", sent: "uploaded", want: "uploaded", data: 1, folder: 1},
		{name: "an atomic upload over a file syncs the same", opts: Options{Atomic: true},
			verb: "STOR", path: "/pub/a.txt", sent: "uploaded", want: "uploaded", data: 1, folder: 1},
		{name: "an empty atomic upload still syncs its new file and the folder", opts: Options{Atomic: true},
			verb: "STOR", path: "/pub/nothing.txt", data: 1, folder: 1},
		{name: "a drop box's upload syncs its data and the folder of its hard link", opts: Options{Atomic: true}, box: true,
			verb: "STOR", path: "/pub/empty/new.txt", sent: "uploaded", want: "uploaded", data: 1, folder: 1},
		{name: "a direct upload of a new file syncs its data and its folder", opts: Options{},
			verb: "STOR", path: "/pub/new.txt", sent: "uploaded", want: "uploaded", data: 1, folder: 1},
		{name: "a direct upload over a file syncs its data only", opts: Options{},
			verb: "STOR", path: "/pub/a.txt", sent: "uploaded", want: "uploaded", data: 1},
		{name: "an append syncs what it added", opts: Options{Atomic: true},
			verb: "APPE", path: "/pub/a.txt", sent: " world", want: "hello world", data: 1},
		{name: "with NoSync an atomic upload syncs nothing", opts: Options{Atomic: true, NoSync: true},
			verb: "STOR", path: "/pub/new.txt", sent: "uploaded", want: "uploaded"},
		{name: "with NoSync a direct upload syncs nothing", opts: Options{NoSync: true},
			verb: "STOR", path: "/pub/new.txt", sent: "uploaded", want: "uploaded"},
		{name: "with NoSync an append syncs nothing", opts: Options{Atomic: true, NoSync: true},
			verb: "APPE", path: "/pub/a.txt", sent: " world", want: "hello world"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sb := newSandbox(t)
			fsys := sb.open(t, tt.opts)
			syncs := countSyncs(fsys)
			var served afero.Fs = fsys
			if tt.box {
				served = DropBox(fsys, "/pub/empty")
			}
			c := login(t, sb, startEngine(t, served))

			conn := c.data()
			c.expect(150, "%s %s", tt.verb, tt.path)
			_, _ = io.WriteString(conn, tt.sent)
			_ = conn.Close()
			c.expect226()

			if data, folder := syncs.get("data"), syncs.get("folder"); data != tt.data || folder != tt.folder {
				t.Errorf("at the 226: %d data and %d folder syncs, want %d and %d", data, folder, tt.data, tt.folder)
			}
			if got := diskFile(t, filepath.Join(sb.root, filepath.FromSlash(tt.path))); got != tt.want {
				t.Errorf("%s holds %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

// A big upload comes in through (*os.File).ReadFrom, which splices from
// the data connection; with the write-back on, it arrives in steps, and
// every byte lands where it belongs.
func TestEngineBigUploadArrivesIntactWithTheWriteBack(t *testing.T) {
	t.Parallel()
	const size = 64<<20 + 12345 // four steps and a bit
	payload := randomBytes(size)
	for _, noSync := range []bool{false, true} {
		sb := newSandbox(t)
		fsys := sb.open(t, Options{Atomic: true, NoSync: noSync})
		syncs := countSyncs(fsys)
		c := login(t, sb, startEngine(t, fsys))

		conn := c.data()
		c.expect(150, "STOR /pub/big.bin")
		if _, err := conn.ReadFrom(bytes.NewReader(payload)); err != nil {
			t.Fatal(err)
		}
		_ = conn.Close()
		c.expect226()

		got, err := os.ReadFile(filepath.Join(sb.root, "pub", "big.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != size || sha256.Sum256(got) != sha256.Sum256(payload) {
			t.Fatalf("NoSync %t: the upload holds %d bytes that differ from the %d sent", noSync, len(got), size)
		}
		pushes, want := syncs.get("writeback"), 0
		if !noSync && writebackWorks {
			want = size / writebackStep
		}
		if pushes != want {
			t.Errorf("NoSync %t: %d write-back pushes, want %d", noSync, pushes, want)
		}
	}
}

// readFromInSteps hands (*os.File).ReadFrom pieces that end on steps, each
// a LimitedReader of the caller's own reader, and takes them off the
// caller's LimitedReader as they go, whether the data ends before its
// limit, at it or after it.
func TestReadFromInStepsKeepsTheCallersLimit(t *testing.T) {
	t.Parallel()
	if !writebackWorks {
		t.Skip("no sync_file_range(2) write-back on this platform: Linux only")
	}
	const step = writebackStep
	tests := []struct {
		name        string
		data, limit int64 // limit < 0: not a LimitedReader
		pushes      int
	}{
		{"a limit inside the data stops there", 2*step + 10, 2*step + 3, 2},
		{"data that ends before the limit stops at its end", step + 7, 3 * step, 1},
		{"no LimitedReader reads to the end", 2*step - 1, -1, 1},
		{"a limit of zero reads nothing", step, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			payload := randomBytes(int(tt.data))
			fsys := newSandbox(t).open(t, Options{})
			syncs := countSyncs(fsys)
			wf, err := fsys.OpenFile("/pub/steps.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = wf.Close() })

			var r io.Reader = bytes.NewReader(payload)
			want := tt.data
			if tt.limit >= 0 {
				r = &io.LimitedReader{R: r, N: tt.limit}
				want = min(tt.data, tt.limit)
			}
			n, err := wf.(io.ReaderFrom).ReadFrom(r)
			if err != nil || n != want {
				t.Fatalf("ReadFrom = %d, %v; want %d, nil", n, err, want)
			}
			if lr, ok := r.(*io.LimitedReader); ok && lr.N != tt.limit-want {
				t.Errorf("the caller's limit is %d after, want %d", lr.N, tt.limit-want)
			}
			if got := syncs.get("writeback"); got != tt.pushes {
				t.Errorf("%d pushes, want %d", got, tt.pushes)
			}
			if err := wf.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(fsys.dir, "pub", "steps.bin"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, payload[:want]) {
				t.Errorf("the file holds %d bytes that differ from the %d read", len(got), want)
			}
		})
	}
}
