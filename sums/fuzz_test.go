package sums

import (
	"bytes"
	"testing"
)

// FuzzParse feeds Parse arbitrary checksum files: a mirror publishes what
// its upstream wrote, so nothing in one may panic the server, a file over
// the limit is refused, and every digest kept has its algorithm's length.
func FuzzParse(f *testing.F) {
	f.Add([]byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  empty\n"), "SHA256SUMS")
	f.Add([]byte("SHA256 (a b) = e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"), "CHECKSUM")
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n- d41d8cd98f00b204e9800998ecf8427e *x\n"+
		"-----BEGIN PGP SIGNATURE-----\n"), "MD5SUMS")
	f.Add([]byte("d41d8cd98f00b204e9800998ecf8427e\n"), "x.iso.md5")
	f.Add([]byte("\\e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  a\\nb\\\\c\n"), "SHA256SUMS")

	f.Fuzz(func(t *testing.T, data []byte, name string) {
		const limit = 1 << 16

		got, err := Parse(bytes.NewReader(data), name, limit)
		if err != nil {
			return
		}

		if int64(len(data)) > limit {
			t.Fatalf("a %d-byte file over the %d limit was parsed", len(data), limit)
		}

		for key, d := range got.digests {
			algo := Algo(rune(key[0]))
			if len(d) != algo.Size() {
				t.Fatalf("%s digest of %d bytes for %q", algo, len(d), key[1:])
			}
		}
	})
}
