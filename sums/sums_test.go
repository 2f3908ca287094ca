package sums

import (
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	md5a    = "0cc175b9c0f1b6a831c399e269772661"
	sha1a   = "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"
	sha256a = "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
	sha512a = "1f40fc92da241694750979ee6cf582f2d5d7d28e18335de05abc54d0560e0f5302860c652bf08d560252aa5e74210546f369fbbbce8c12cfc7957b2652fe9a75"
)

func TestParseFormats(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name, file, text string
		lookup           string
		algo             Algo
		want             string
	}{
		{"GNU text mode", "SHA256SUMS", sha256a + "  a.iso\n", "a.iso", SHA256, sha256a},
		{"GNU binary mode", "SHA256SUMS", sha256a + " *a.iso\n", "a.iso", SHA256, sha256a},
		{"GNU with ./", "SHA256SUMS", sha256a + "  ./sub/a.iso\n", "sub/a.iso", SHA256, sha256a},
		{"GNU with CRLF", "MD5SUMS", md5a + "  a.iso\r\n", "a.iso", MD5, md5a},
		{"GNU escaped name", "SHA1SUMS", "\\" + sha1a + "  a\\\\b\\nc\n", "a\\b\nc", SHA1, sha1a},
		{"GNU name with spaces", "SHA512SUMS", sha512a + "  my file.iso\n", "my file.iso", SHA512, sha512a},
		{"GNU, algorithm by length", "CHECKSUMS", sha1a + "  a.iso\n" + sha256a + "  a.iso\n", "a.iso", SHA256, sha256a},
		{"BSD tag", "Fedora-x86_64-CHECKSUM", "# comment\nSHA256 (a.iso) = " + sha256a + "\n", "a.iso", SHA256, sha256a},
		{"BSD tag without spaces", "CHECKSUM", "SHA2-512(a.iso)= " + sha512a + "\n", "a.iso", SHA512, sha512a},
		{"BSD tag, name with parentheses", "CHECKSUM", "MD5 (a (1).iso) = " + md5a + "\n", "a (1).iso", MD5, md5a},
		{"lone digest beside its file", "a.iso.sha256", sha256a + "\n", "a.iso", SHA256, sha256a},
		{"sum file beside its file", "a.iso.sha256", sha256a + " *a.iso\n", "a.iso", SHA256, sha256a},
		{"clear-signed", "SHA256SUMS", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" +
			sha256a + " *a.iso\n- " + sha256a + "  dash.iso\n-----BEGIN PGP SIGNATURE-----\n\n" + sha256a + "  sig.iso\n" +
			"-----END PGP SIGNATURE-----\n", "a.iso", SHA256, sha256a},
		{"clear-signed, dash-escaped", "SHA256SUMS", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- " +
			sha256a + "  dash.iso\n-----BEGIN PGP SIGNATURE-----\n", "dash.iso", SHA256, sha256a},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			f, err := Parse(strings.NewReader(tc.text), tc.file, 1<<20)
			if err != nil {
				t.Fatal(err)
			}

			got, ok := f.Lookup(tc.lookup, tc.algo)
			if !ok || hex.EncodeToString(got) != tc.want {
				t.Fatalf("Lookup(%q, %s) = %x, %t; want %s", tc.lookup, tc.algo, got, ok, tc.want)
			}
		})
	}
}

func TestParseSkips(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name, file, text, lookup string
		algo                     Algo
	}{
		{"a SHA-256 file's line asked as MD5", "SHA256SUMS", sha256a + "  a.iso\n", "a.iso", MD5},
		{"a digest of the wrong length for the file's name", "SHA256SUMS", md5a + "  a.iso\n", "a.iso", MD5},
		{"a name leaving the folder", "SHA256SUMS", sha256a + "  ../a.iso\n", "../a.iso", SHA256},
		{"an absolute name", "SHA256SUMS", sha256a + "  /etc/a.iso\n", "etc/a.iso", SHA256},
		{"the signature block", "SHA256SUMS", "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" +
			"-----BEGIN PGP SIGNATURE-----\n" + sha256a + "  a.iso\n", "a.iso", SHA256},
		{"an armor header", "SHA256SUMS", "-----BEGIN PGP SIGNED MESSAGE-----\n" + sha256a + "  a.iso\n\n", "a.iso", SHA256},
		{"not hex", "SHA256SUMS", strings.Repeat("z", 64) + "  a.iso\n", "a.iso", SHA256},
		{"a lone digest in a file named for no file", "SHA256SUMS", sha256a + "\n", "SHA256SUMS", SHA256},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			f, err := Parse(strings.NewReader(tc.text), tc.file, 1<<20)
			if err != nil {
				t.Fatal(err)
			}

			if got, ok := f.Lookup(tc.lookup, tc.algo); ok {
				t.Fatalf("Lookup(%q, %s) = %x; want none", tc.lookup, tc.algo, got)
			}
		})
	}
}

func TestParseRefusesWhatIsTooBig(t *testing.T) {
	t.Parallel()

	text := strings.Repeat(sha256a+"  a.iso\n", 100)
	if _, err := Parse(strings.NewReader(text), "SHA256SUMS", int64(len(text)-1)); !errors.Is(err, ErrTooBig) {
		t.Fatalf("Parse of %d bytes with a limit one less: %v, want ErrTooBig", len(text), err)
	}

	if _, err := Parse(strings.NewReader(text), "SHA256SUMS", int64(len(text))); err != nil {
		t.Fatalf("Parse of %d bytes with that limit: %v", len(text), err)
	}

	long := strings.Repeat("x", 100<<10) + "\n"
	if _, err := Parse(strings.NewReader(long), "SHA256SUMS", 1<<20); !errors.Is(err, ErrTooBig) {
		t.Fatalf("Parse of a 100 KiB line: %v, want ErrTooBig", err)
	}
}

func TestCacheParsesOnceAndStaysBounded(t *testing.T) {
	t.Parallel()

	one := func() (*File, error) { return Parse(strings.NewReader(sha256a+"  a.iso\n"), "SHA256SUMS", 1<<20) }
	f, _ := one()
	c := NewCache(3 * f.Cost())

	var parses atomic.Int32
	counted := func() (*File, error) {
		parses.Add(1)
		time.Sleep(10 * time.Millisecond)

		return one()
	}

	key := Key{ID: "1:1", ModTime: time.Unix(1, 0), Size: 70}

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Get(key, counted); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	if n := parses.Load(); n != 1 {
		t.Fatalf("8 sessions at once parsed %d times, want 1", n)
	}

	for i := range 10 {
		if _, err := c.Get(Key{ID: "1:1", ModTime: time.Unix(int64(i+2), 0)}, one); err != nil {
			t.Fatal(err)
		}
	}

	if n := c.Len(); n != 3 {
		t.Fatalf("the cache holds %d files, want 3 (its bound)", n)
	}

	big := func() (*File, error) {
		return Parse(strings.NewReader(strings.Repeat(sha256a+"  a.iso\n", 1)+sha256a+"  b.iso\n"+sha256a+"  c.iso\n"+
			sha256a+"  d.iso\n"), "SHA256SUMS", 1<<20)
	}
	if _, err := c.Get(Key{ID: "2:2"}, big); err != nil {
		t.Fatal(err)
	}

	if n := c.Len(); n != 3 {
		t.Fatalf("after a file bigger than the bound, the cache holds %d files, want 3", n)
	}
}
