package s3

import (
	"path"
	"strings"
	"testing"
)

// FuzzKeys checks the one rule that confines a session: whatever name a
// client sends, the keys it can touch are clean keys below its home's
// prefix. (Keys are flat strings: S3 would store "a/../b" as it is, and
// a listing prefix without its slash would match a neighbour's home.)
// The seeds run in make test; make fuzz would explore further.
func FuzzKeys(f *testing.F) {
	for _, seed := range []string{
		"", "/", ".", "..", "../x", "/../../x", "a/../../b", "//a//b//", "a/./b/.", `..\x`, "...",
		"a/b/../../../../etc/passwd", "/alice2/x", "\x00", "é/ü", strings.Repeat("../", 100) + "z",
	} {
		f.Add(seed)
	}
	s := &Store{prefix: cleanPrefix("/site//")}
	fsys, err := s.Open("/../alice/", false)
	if err != nil {
		f.Fatal(err)
	}
	if fsys.root != "site/alice/" {
		f.Fatalf("root %q, want site/alice/", fsys.root)
	}
	f.Fuzz(func(t *testing.T, name string) {
		v := clean(name)
		if !path.IsAbs(v) || path.Clean(v) != v {
			t.Fatalf("clean(%q) = %q, not a clean absolute path", name, v)
		}
		keys := []string{fsys.dirPrefix(v)}
		if v != "/" {
			keys = append(keys, fsys.key(v))
		}
		for _, k := range keys {
			rest, below := strings.CutPrefix(k, "site/alice/")
			if !below {
				t.Fatalf("name %q gives the key %q, outside site/alice/", name, k)
			}
			for elem := range strings.SplitSeq(strings.TrimSuffix(rest, "/"), "/") {
				if rest != "" && (elem == "" || elem == "." || elem == "..") {
					t.Fatalf("name %q gives the key %q, with the element %q", name, k, elem)
				}
			}
		}
	})
}
