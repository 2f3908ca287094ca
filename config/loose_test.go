package config

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"wharf/server"
)

// A secret file that others may read or change, or its group change, is
// reported with its mode and the command that fixes it; 0600 and 0640 are not.
func TestLooseFiles(t *testing.T) {
	t.Parallel()

	tests := []struct {
		mode fs.FileMode
		want string // "" for no warning
	}{
		{0o600, ""},
		{0o400, ""},
		{0o640, ""}, // a service user reading a root-owned file through its group
		{0o644, `tls.key_file "DIR/key.pem" has mode 0644: others can read it; fix: chmod 600 DIR/key.pem`},
		{0o604, `tls.key_file "DIR/key.pem" has mode 0604: others can read it; fix: chmod 600 DIR/key.pem`},
		{0o602, `tls.key_file "DIR/key.pem" has mode 0602: others can change it; fix: chmod 600 DIR/key.pem`},
		{0o620, `tls.key_file "DIR/key.pem" has mode 0620: its group can change it; fix: chmod 600 DIR/key.pem`},
		{0o666, `tls.key_file "DIR/key.pem" has mode 0666: others can read it, others can change it, ` +
			`its group can change it; fix: chmod 600 DIR/key.pem`},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			t.Parallel()

			dir := t.TempDir()
			key := filepath.Join(dir, "key.pem")
			writeMode(t, key, tt.mode)

			c := Default()
			c.TLS.Mode, c.TLS.KeyFile = TLSMode(server.TLSExplicit), key

			got := c.LooseFiles("")
			if tt.want == "" {
				if len(got) != 0 {
					t.Errorf("LooseFiles() = %v, want none", got)
				}

				return
			}

			want := replaceDir(tt.want, dir)
			if len(got) != 1 || got[0].String() != want {
				t.Errorf("LooseFiles() = %q, want %q", got, want)
			}
		})
	}
}

// Each file holding a secret is checked while it is in use, and only then.
func TestLooseFilesInUse(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	path := func(name string) string {
		p := filepath.Join(dir, name)
		writeMode(t, p, 0o644)

		return p
	}
	key, users, token, main := path("key.pem"), path("users.toml"), path("admin.token"), path("wharf.toml")

	c := Default()
	c.TLS.KeyFile, c.UsersFile, c.Admin.TokenFile = key, users, token
	c.Users = []User{{Name: "dave", file: users}}

	// TLS off, no admin listener, no [[users]] in the main file: only users_file is used.
	if got := keys(c.LooseFiles(main)); !slices.Equal(got, []string{"users_file"}) {
		t.Errorf("LooseFiles() = %q, want users_file only", got)
	}

	c.TLS.Mode, c.Admin.Listen = TLSMode(server.TLSImplicit), "127.0.0.1:9121"
	c.Users = append(c.Users, User{Name: "alice"})
	if got, want := keys(c.LooseFiles(main)), []string{"tls.key_file", "users_file", "admin.token_file", "config"}; !slices.Equal(got, want) {
		t.Errorf("LooseFiles() = %q, want %q", got, want)
	}

	if got := c.LooseFiles(main)[3].String(); got != replaceDir(`configuration file "DIR/wharf.toml" (it holds [[users]] `+
		`password hashes) has mode 0644: others can read it; fix: chmod 600 DIR/wharf.toml`, dir) {
		t.Errorf("the main file's warning = %q", got)
	}

	// Without a file (the environment only), there is no main file to check.
	if got := keys(c.LooseFiles("")); slices.Contains(got, "config") {
		t.Errorf("LooseFiles(\"\") = %q, want no config", got)
	}

	// A file gone since loading is left out.
	if err := os.Remove(token); err != nil {
		t.Fatal(err)
	}
	if got := keys(c.LooseFiles(main)); slices.Contains(got, "admin.token_file") {
		t.Errorf("LooseFiles() = %q with the token file gone", got)
	}
}

func TestFixQuotesThePath(t *testing.T) {
	t.Parallel()

	for path, want := range map[string]string{
		"/etc/wharf/key.pem":   "chmod 600 /etc/wharf/key.pem",
		"keys/my key.pem":      "chmod 600 'keys/my key.pem'",
		"it's.pem":             `chmod 600 'it'\''s.pem'`,
		"/run/secrets/$(boom)": "chmod 600 '/run/secrets/$(boom)'",
	} {
		if got := (LooseFile{Path: path}).Fix(); got != want {
			t.Errorf("Fix() for %q = %q, want %q", path, got, want)
		}
	}
}

// writeMode writes a small file with exactly mode, whatever the umask.
func writeMode(t *testing.T, path string, mode fs.FileMode) {
	t.Helper()

	if err := os.WriteFile(path, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func keys(files []LooseFile) []string {
	out := make([]string, 0, len(files))
	for _, f := range files {
		out = append(out, f.Key)
	}

	return out
}

// replaceDir puts dir in place of DIR in s.
func replaceDir(s, dir string) string {
	return strings.ReplaceAll(s, "DIR", dir)
}
