package vfs

import (
	"testing"

	"github.com/spf13/afero"
)

// BenchmarkResolve measures a session's name resolution: a relative name
// joined to the working directory, checked and cleaned. make test runs it
// once as a smoke test (-benchtime=1x).
func BenchmarkResolve(b *testing.B) {
	fs := Resolve(afero.NewMemMapFs(), func() string { return "/pub/releases/2.4" })
	_ = fs.Mkdir("/pub", 0o755)

	for b.Loop() {
		_, _ = fs.Stat("../2.3/../../releases/./2.4/wharf-2.4.1.tar.gz")
	}
}

// BenchmarkStat measures Stat through os.Root on a real folder.
func BenchmarkStat(b *testing.B) {
	dir := b.TempDir()
	root, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()

	if err := root.MkdirAll("/pub/releases", 0o755); err != nil {
		b.Fatal(err)
	}

	for b.Loop() {
		_, _ = root.Stat("/pub/releases")
	}
}

// BenchmarkStatDefaultDeny measures Stat with rsync's deny patterns
// (DefaultDeny), which every element of the path is checked against.
func BenchmarkStatDefaultDeny(b *testing.B) {
	dir := b.TempDir()
	root, err := Open(dir, Options{Deny: DefaultDeny()})
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()

	if err := root.MkdirAll("/pub/releases/2.4", 0o755); err != nil {
		b.Fatal(err)
	}

	for b.Loop() {
		_, _ = root.Stat("/pub/releases/2.4")
	}
}

// BenchmarkDenyMatch measures the deny check of one path element that does
// not match rsync's patterns, as most names do.
func BenchmarkDenyMatch(b *testing.B) {
	m := newMatcher(DefaultDeny())

	for b.Loop() {
		if m.match("wharf-2.4.1.tar.gz") {
			b.Fatal("denied")
		}
	}
}
