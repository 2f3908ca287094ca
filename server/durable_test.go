package server

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/jlaffaye/ftp"

	"wharf/auth"
	"wharf/internal/ftptest"
)

// A big upload through the server's own transfer loop: in clear, its
// chunks are spliced into the file (ReadFrom), over TLS they are written
// (Write). Either way, with the write-back that makes it durable pushing
// every 16 MiB or without it, every byte lands, in atomic and direct mode.
func TestBigUploadArrivesIntact(t *testing.T) {
	t.Parallel()

	payload := ftptest.RandomBytes(hugeSize + 4321) // four write-back steps and a bit
	want := ftptest.Sum(payload)

	tests := []struct {
		name                    string
		atomic, noSync, overTLS bool
	}{
		{name: "an atomic upload, spliced and synced", atomic: true},
		{name: "an atomic upload, spliced, not synced", atomic: true, noSync: true},
		{name: "a direct upload, spliced and synced"},
		{name: "a direct upload, spliced, not synced", noSync: true},
		{name: "an atomic upload over TLS, written and synced", atomic: true, overTLS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			f, home := userFixture(t, auth.ReadWrite)
			f.opts.AtomicUploads, f.opts.NoUploadSync = tt.atomic, tt.noSync
			var opts []ftp.DialOption
			if tt.overTLS {
				f.opts.TLSMode = TLSExplicit
				f.opts.TLSCertFile, f.opts.TLSKeyFile = ftptest.CertFiles(t)
				opts = append(opts, ftp.DialWithExplicitTLS(clientTLS()))
			}
			ts := startServer(t, f)
			c := ts.dial(t, "alice", testPassword, opts...)

			if err := c.Stor("/big.bin", bytes.NewReader(payload)); err != nil {
				t.Fatal(err)
			}

			if got := fileSum(t, filepath.Join(home, "big.bin")); got != want {
				t.Fatalf("the upload's SHA-256 is %s, want %s", got, want)
			}

			noTempFiles(t, home)
		})
	}
}
