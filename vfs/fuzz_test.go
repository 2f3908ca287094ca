package vfs

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spf13/afero"
)

// FuzzResolve runs every operation on arbitrary names, resolved against the
// working directory /pub of a sandbox with in-root and escaping links, and
// checks that nothing outside the root was read into an error, changed or
// created.
func FuzzResolve(f *testing.F) {
	for _, seed := range []string{
		"", "/", ".", "..", "../..", "../../..", "pub/", "pub//a.txt/", "-la", "a.txt",
		"/../../outside/secret.txt", "../outside/secret.txt", "../../etc/passwd",
		"evil", "evil/", "/evil/secret.txt", "evilrel/x", "evilfile", "chainout1/secret.txt",
		"abs/a.txt", "latest/../../outside", "/latest/file.iso", "readme", "dangling",
		"a\x00b", "a\rb", "a\nb", "x\r\nDELE a.txt", TempPrefix + "0123456789abcdef",
		strings.Repeat("a/", 100), strings.Repeat("x", 5000), strings.Repeat("../", 100) + "outside",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, name string, atomic bool) {
		sb := newSandbox(t)
		fsys := Resolve(sb.open(t, Options{Atomic: atomic}), func() string { return "/pub" })
		check := func(err error) {
			t.Helper()
			if !strings.Contains(name, sb.base) {
				sb.checkErrText(t, err)
			}
		}
		use := func(file afero.File, err error) {
			t.Helper()
			check(err)
			if err != nil {
				return
			}
			_, err = file.Readdir(-1)
			check(err)
			_, err = io.Copy(io.Discard, file)
			check(err)
			_, err = file.Write([]byte("fuzz"))
			check(err)
			check(file.Close())
		}
		epoch := time.Unix(0, 0)

		_, err := fsys.Stat(name)
		check(err)
		use(fsys.Open(name))
		use(fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644))
		use(fsys.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644))
		use(fsys.Create(name))
		check(fsys.Mkdir(name, 0o755))
		check(fsys.MkdirAll(name+"/sub", 0o755))
		check(fsys.Chmod(name, 0o777))
		check(fsys.Chtimes(name, epoch, epoch))
		check(fsys.Chown(name, 0, 0))
		check(fsys.Rename(name, "/moved"))
		check(fsys.Rename("/pub/a.txt", name))
		check(fsys.Remove(name))
		check(fsys.RemoveAll(name))
		sb.checkOutside(t)
	})
}
