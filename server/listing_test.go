package server

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"wharf/auth"
	"wharf/internal/ftptest"
)

func TestMatch(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"*.iso", "debian.iso", true},
		{"*.iso", "debian.iso.sig", false},
		{"*", "", true},
		{"?", "a", true},
		{"?", "", false},
		{"a*b*c", "abc", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"*a*a*a*a*a*a*a*a*b", strings.Repeat("a", 200), false},
		{"**", "x", true},
		{"x?z", "xyz", true},
		{"x?z", "xz", false},
		{"*.tar.*", "a.tar.gz", true},
		{"?", "挴", true},                   // ? is one character, not one byte
		{"r?sum?.pdf", "résumé.pdf", true}, // NLST r?sum?.pdf finds it, as ls does
		{"??", "é", false},                 // two bytes, one character
		{"*?.txt", "ü.txt", true},
		{"\xec?", "\xa20", false}, // bytes that are not UTF-8 still compare as bytes
	} {
		got := match(tc.pattern, tc.name)
		if got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}

		if want, err := path.Match(tc.pattern, tc.name); err == nil && want != got {
			t.Errorf("match(%q, %q) = %v, path.Match says %v", tc.pattern, tc.name, got, want)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("*.iso", "a.iso")
	f.Add("a*b?c", "aXbYc")
	f.Add("**?*", "")

	f.Fuzz(func(t *testing.T, pattern, name string) {
		if strings.ContainsAny(pattern, `[\`) || strings.Contains(pattern, "/") || strings.Contains(name, "/") {
			return // path.Match's extra syntax, which listings do not offer
		}

		want, err := path.Match(pattern, name)
		if err != nil {
			return
		}

		if got := match(pattern, name); got != want {
			t.Fatalf("match(%q, %q) = %v, path.Match says %v", pattern, name, got, want)
		}
	})
}

func TestListingPatternsAndCap(t *testing.T) {
	t.Parallel()

	f, root := anonFixture(t)
	for i := range 30 {
		writeFile(t, filepath.Join(root, "iso", fmt.Sprintf("disc-%02d.iso", i)), []byte("x"))
		writeFile(t, filepath.Join(root, "iso", fmt.Sprintf("disc-%02d.iso.sha256", i)), []byte("y"))
	}

	for i := range 15 {
		writeFile(t, filepath.Join(root, "few", fmt.Sprintf("disc-%02d.iso", i)), []byte("x"))
		writeFile(t, filepath.Join(root, "few", fmt.Sprintf("disc-%02d.iso.sha256", i)), []byte("y"))
	}

	f.opts.MaxListEntries = 40
	ts := startServer(t, f)

	t.Run("NLST of a pattern lists matching names relative to the folder", func(t *testing.T) {
		c := ts.dial(t, "anonymous", "x")
		if err := c.ChangeDir("/few"); err != nil {
			t.Fatal(err)
		}

		names, err := c.NameList("*.iso")
		if err != nil {
			t.Fatal(err)
		}

		if len(names) != 15 || names[0] != "disc-00.iso" || names[14] != "disc-14.iso" {
			t.Fatalf("got %d names: %v", len(names), names)
		}

		// Over max_list_entries entries, a pattern matches among the first
		// max_list_entries the folder gives.
		names, err = c.NameList("/iso/*.iso")
		if err != nil {
			t.Fatal(err)
		}

		for _, n := range names {
			if !strings.HasPrefix(n, "/iso/disc-") || !strings.HasSuffix(n, ".iso") {
				t.Errorf("NLST /iso/*.iso gave %q", n)
			}
		}

		if len(names) == 0 || len(names) > 30 || !slices.IsSorted(names) {
			t.Errorf("NLST /iso/*.iso gave %d names, sorted: %v", len(names), slices.IsSorted(names))
		}
	})

	t.Run("a listing stops at max_list_entries", func(t *testing.T) {
		c := ts.dial(t, "anonymous", "x")
		entries := ftptest.List(t, c, "/iso")
		if len(entries) != 40 {
			t.Fatalf("got %d entries, want 40", len(entries))
		}

		names := make([]string, 0, len(entries))
		for _, e := range entries {
			names = append(names, e.Name)
		}

		if !slices.IsSorted(names) {
			t.Errorf("listing is not sorted: %v", names)
		}
	})

	t.Run("STAT of a folder is capped too", func(t *testing.T) {
		c := ts.raw(t)
		c.Login("anonymous", "x")
		msg := c.Must(212, "STAT /iso")
		if n := strings.Count(msg, "disc-"); n != 40 {
			t.Fatalf("STAT listed %d entries", n)
		}
	})

	t.Run("pattern bombs answer at once", func(t *testing.T) {
		c := ts.raw(t)
		c.Login("anonymous", "x")

		for _, bomb := range []string{"*/../*/../*", strings.Repeat("*", 300), strings.Repeat("*a", 100) + "b", "{a,b}*"} {
			conn := c.DialPasv()

			start := time.Now()
			code, _ := c.Cmd("LIST /iso/%s", bomb)
			if code == 150 {
				_ = readAllFrom(t, conn)
				code, _ = c.Read()
			}
			_ = conn.Close()

			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("LIST %q took %v", bomb, took)
			}

			if code != 226 && code != 450 && code != 550 {
				t.Errorf("LIST %q: got %d", bomb, code)
			}
		}
	})
}

// Listings are cached for a mirror's repeated LISTs, but never show a stale
// folder: not after a change through wharf, nor after one on disk.
func TestListingCacheStaysFresh(t *testing.T) {
	t.Parallel()

	f, home := userFixture(t, auth.ReadWrite)
	ts := startServer(t, f)
	c := ts.dial(t, "alice", testPassword)

	names := func() map[string]uint64 {
		t.Helper()

		entries, err := c.List("/pub")
		if err != nil {
			t.Fatal(err)
		}

		out := map[string]uint64{}
		for _, e := range entries {
			out[e.Name] = e.Size
		}

		return out
	}

	_ = names() // cached now

	if err := c.Stor("/pub/new.txt", strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}

	if got := names(); got["new.txt"] != 5 {
		t.Fatalf("an upload is missing from the listing: %v", got)
	}

	if err := c.Append("/pub/new.txt", strings.NewReader("678")); err != nil {
		t.Fatal(err)
	}

	if got := names(); got["new.txt"] != 8 {
		t.Fatalf("an append is not in the listing: %v", got)
	}

	if err := c.Rename("/pub/new.txt", "/pub/renamed.txt"); err != nil {
		t.Fatal(err)
	}

	if got := names(); got["renamed.txt"] != 8 || got["new.txt"] != 0 {
		t.Fatalf("a rename is not in the listing: %v", got)
	}

	writeFile(t, filepath.Join(home, "pub", "from-disk.txt"), []byte("x"))
	if got := names(); got["from-disk.txt"] != 1 {
		t.Fatalf("a file added on disk is missing: %v", got)
	}

	if err := c.Delete("/pub/renamed.txt"); err != nil {
		t.Fatal(err)
	}

	if got := names(); got["renamed.txt"] != 0 {
		t.Fatalf("a deleted file is still listed: %v", got)
	}
}
