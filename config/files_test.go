package config

import (
	"slices"
	"testing"

	"wharf/server"
)

// Files names what a reload reads, once each, and leaves out what the
// configuration does not use.
func TestFilesAReloadReads(t *testing.T) {
	t.Parallel()

	c := Default()
	if got := c.Files(""); got != nil {
		t.Errorf("Default().Files(\"\") = %q, want none", got)
	}

	c.UsersFile = "users.toml"
	c.BannerFile = "banner.txt"
	c.Anonymous.LoginMessageFile = "login.txt"
	c.TLS.CertFile, c.TLS.KeyFile = "tls.pem", "tls.pem" // one file may hold both
	c.Admin.TokenFile = "admin.token"

	// TLS off, no admin listener: their files are not read.
	want := []string{"wharf.toml", "users.toml", "banner.txt", "login.txt"}
	if got := c.Files("wharf.toml"); !slices.Equal(got, want) {
		t.Errorf("Files() = %q, want %q", got, want)
	}

	c.TLS.Mode = TLSMode(server.TLSExplicit)
	c.Admin.Listen = "127.0.0.1:9121"
	c.Anonymous.Enabled = false

	want = []string{"wharf.toml", "users.toml", "banner.txt", "tls.pem", "admin.token"}
	if got := c.Files("wharf.toml"); !slices.Equal(got, want) {
		t.Errorf("Files() with TLS and the admin listener = %q, want %q", got, want)
	}
}
