package config

import (
	"fmt"
	"io"
	"slices"

	"github.com/BurntSushi/toml"
)

// redacted replaces a secret in printed configurations.
const redacted = "<redacted>"

// Redacted returns a copy of c with its secrets replaced by "<redacted>":
// every user's password hash, and storage.access_key and storage.secret_key
// when they are set.
func (c Config) Redacted() Config {
	c.Users = slices.Clone(c.Users)
	for i := range c.Users {
		c.Users[i].Password = redacted
	}

	if c.Storage.AccessKey != "" {
		c.Storage.AccessKey = redacted
	}
	if c.Storage.SecretKey != "" {
		c.Storage.SecretKey = redacted
	}

	return c
}

// WriteTOML writes c, redacted (see Redacted), as TOML in the file's
// layout, after a comment saying what it is. [[users]] holds the accounts of
// users_file too, so the output is for reading, not for loading as it is.
func (c Config) WriteTOML(w io.Writer) error {
	header := "# The configuration in effect: defaults, then the file, then WHARF_* variables,\n" +
		"# then flags. Secrets are shown as \"" + redacted + "\"; [[users]] includes users_file's.\n"
	if c.PublicIP != "" && c.PublicIP != c.PublicHost {
		header += fmt.Sprintf("# public_host %q resolves to %s.\n", c.PublicHost, c.PublicIP)
	}

	if _, err := io.WriteString(w, header+"\n"); err != nil {
		return err
	}

	enc := toml.NewEncoder(w)
	enc.Indent = ""

	return enc.Encode(c.Redacted())
}
