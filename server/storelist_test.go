package server

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/spf13/afero"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// memStore is an object store in memory: one tree, each home a prefix of
// it, whose folders keep their time when entries come and go, as S3
// prefixes (which have none) do. Its roots name their listings by prefix
// (ListingKeyer). A folder's read waits for gate, when there is one. looks
// counts the Stat and Open calls, each of which costs requests on S3.
type memStore struct {
	mem   afero.Fs
	gate  chan struct{}
	looks atomic.Int64
}

type storeRoot struct {
	afero.Fs
	home string
	st   *memStore
}

var _ ListingKeyer = storeRoot{}

func (m *memStore) open(home string, _ bool) (Root, error) {
	return storeRoot{Fs: afero.NewBasePathFs(m.mem, home), home: home, st: m}, nil
}

func (storeRoot) Close() error { return nil }

func (r storeRoot) ListingKey(dir string) string { return path.Join(r.home, dir) + "/" }

func (r storeRoot) Stat(name string) (os.FileInfo, error) {
	r.st.looks.Add(1)

	return r.Fs.Stat(name)
}

func (r storeRoot) Open(name string) (afero.File, error) {
	r.st.looks.Add(1)

	f, err := r.Fs.Open(name)
	if err != nil || r.st.gate == nil {
		return f, err
	}

	return gatedFile{File: f, gate: r.st.gate}, nil
}

type gatedFile struct {
	afero.File
	gate chan struct{}
}

func (f gatedFile) Readdir(n int) ([]os.FileInfo, error) {
	<-f.gate

	return f.File.Readdir(n)
}

// storeFixture serves a memStore holding /pub/big (n files) to anonymous
// sessions (root /pub) and to alice, read-write, whose home is the top.
func storeFixture(t *testing.T, n int) (fixture, *memStore) {
	t.Helper()

	st := &memStore{mem: afero.NewMemMapFs()}
	for i := range n {
		if err := afero.WriteFile(st.mem, fmt.Sprintf("/pub/big/f%05d", i), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	f := fixture{
		opts:  defaultOptions(),
		users: []auth.User{{Name: "alice", PasswordHash: testHash, Home: "/", Access: auth.ReadWrite}},
		anon:  "/pub",
	}
	f.opts.Storage = st.open

	return f, st
}

func (ts *testServer) folderReads() int {
	ts.srv.dirs.mu.Lock()
	defer ts.srv.dirs.mu.Unlock()

	return ts.srv.dirs.reads
}

// On an object store, a folder lists the same from every home that reaches
// it: LIST, NLST and MLSD by anonymous and by alice share one read, and a
// change alice makes is in anonymous's next listing at once.
func TestStoreListingsAreSharedAcrossHomes(t *testing.T) {
	t.Parallel()

	f, _ := storeFixture(t, 1500)
	ts := startServer(t, f)

	anon := ftptest.Login(t, ts.addr, "anonymous", "x")
	alice := ts.dial(t, "alice", testPassword)

	if n := len(ftptest.List(t, anon, "/big")); n != 1500 {
		t.Fatalf("anonymous LIST /big: %d entries", n)
	}

	nlst, err := alice.NameList("/pub/big")
	if err != nil || len(nlst) != 1500 {
		t.Fatalf("alice NLST /pub/big: %d names, %v", len(nlst), err)
	}

	mlsd, err := alice.List("/pub/big") // MLSD, with its "." and ".." titles
	if err != nil || len(mlsd) != 1502 {
		t.Fatalf("alice MLSD /pub/big: %d entries, %v", len(mlsd), err)
	}

	if r := ts.folderReads(); r != 1 {
		t.Errorf("LIST, NLST and MLSD of one folder from two homes read it %d times, want once", r)
	}

	if err := alice.Stor("/pub/big/new.txt", strings.NewReader("new")); err != nil {
		t.Fatal(err)
	}

	got, err := anon.NameList("/big")
	if err != nil || !slices.Contains(got, "/big/new.txt") {
		t.Errorf("anonymous does not list alice's upload at once (%v): %d names", err, len(got))
	}
}

// With [listing] cache_ttl = 0, no listing is kept, but a crowd still
// shares one read.
func TestCrowdSharesAReadWithoutCache(t *testing.T) {
	t.Parallel()

	f, st := storeFixture(t, 100)
	f.opts.Listing.CacheTTL = -1
	st.gate = make(chan struct{})
	ts := startServer(t, f)

	const crowd = 6
	var wg sync.WaitGroup
	for i := range crowd {
		wg.Go(func() {
			c := ftptest.Login(t, ts.addr, "anonymous", "x")
			defer func() { _ = c.Quit() }()

			var n int
			if i%2 == 0 {
				n = len(ftptest.List(t, c, "/big"))
			} else {
				got, err := c.NameList("/big")
				if err != nil {
					t.Error(err)
				}
				n = len(got)
			}

			if n != 100 {
				t.Errorf("listed %d entries, want 100", n)
			}
		})
	}

	waitFor(t, func() bool {
		ts.srv.dirs.mu.Lock()
		defer ts.srv.dirs.mu.Unlock()

		r := ts.srv.dirs.reading[dirKey{store: "/pub/big/"}]

		return r != nil && r.waiters == crowd-1
	})
	close(st.gate)
	wg.Wait()

	if r := ts.folderReads(); r != 1 {
		t.Errorf("%d listings at once read the folder %d times, want once", crowd, r)
	}

	c := ftptest.Login(t, ts.addr, "anonymous", "x")
	ftptest.List(t, c, "/big")
	if r := ts.folderReads(); r != 2 {
		t.Errorf("a listing after them read %d times in all, want 2: nothing is kept", r)
	}
}

// A listing looks at its folder once (on S3 a look is a HEAD and a
// one-key list), served from the cache or not; MLSD looks at the parent
// too, for its ".." entry. MLST looks at its file alone.
func TestListingLooksAtItsFolderOnce(t *testing.T) {
	t.Parallel()

	f, st := storeFixture(t, 10)
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	for _, tc := range []struct {
		cmd   string
		looks int64
	}{
		{"LIST /big", 1}, {"NLST /big", 1}, {"MLSD /big", 2}, {"LIST /big", 1},
	} {
		conn := c.DialPasv()
		st.looks.Store(0)
		c.Must(150, "%s", tc.cmd)
		_ = readAllFrom(t, conn)
		c.Expect(226)

		if got := st.looks.Load(); got != tc.looks {
			t.Errorf("%s looked at the store %d times, want %d", tc.cmd, got, tc.looks)
		}
	}

	// MLST of a file looks at it alone: an object store has no links, for
	// which a folder's listing would be read.
	reads := ts.folderReads()
	st.looks.Store(0)
	c.Must(250, "MLST /big/f00001")
	if got := st.looks.Load(); got != 1 || ts.folderReads() != reads {
		t.Errorf("MLST of a file looked at the store %d times and read %d folders, want once and none",
			got, ts.folderReads()-reads)
	}
}

// An object store's listings count against max_listing_memory as the
// disk's do.
func TestStoreListingsCountAgainstListingMemory(t *testing.T) {
	t.Parallel()

	f, _ := storeFixture(t, 1500) // about 370 KB of entries
	f.opts.MaxListingMemory = 100 << 10
	ts := startServer(t, f)
	c := ts.raw(t)
	c.Login("anonymous", "x")

	conn := c.DialPasv()
	defer conn.Close()

	if code, msg := c.Cmd("LIST /big"); code != 450 || !strings.Contains(msg, "max_listing_memory") {
		t.Errorf("LIST of a folder larger than max_listing_memory: %d %q, want 450 naming it", code, msg)
	}

	if used := ts.srv.listMem.inUse(); used != 0 {
		t.Errorf("%d bytes of listing memory held after the refusal", used)
	}
}
