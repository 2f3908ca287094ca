package config

import (
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"

	"wharf/server"
)

// LooseFile is a file holding a secret whose mode lets others than its owner
// and group read it, or others than its owner change it: anyone on the
// machine could read the TLS key, the token or the password hashes (and
// guess the passwords offline), or slip in an account of their own.
type LooseFile struct {
	Key  string      // the key that names the file: "tls.key_file", "users_file", "admin.token_file", or "config" for the main file
	Path string      // as the configuration gives it
	Mode fs.FileMode // its permission bits
}

// looseBits are the mode bits LooseFiles looks for: read or write by others,
// write by the group. A file the group may read (0640) is fine: that is how
// a service user reads a file that root owns.
const looseBits fs.FileMode = 0o006 | 0o020

// String says what is loose and how to fix it, for a warning:
// `tls.key_file "key.pem" has mode 0644: others can read it; fix: chmod 600 key.pem`.
func (f LooseFile) String() string {
	var who []string
	if f.Mode&0o004 != 0 {
		who = append(who, "others can read it")
	}
	if f.Mode&0o002 != 0 {
		who = append(who, "others can change it")
	}
	if f.Mode&0o020 != 0 {
		who = append(who, "its group can change it")
	}

	name := fmt.Sprintf("%s %q", f.Key, f.Path)
	if f.Key == "config" {
		name = fmt.Sprintf("configuration file %q (it holds [[users]] password hashes)", f.Path)
	}

	return fmt.Sprintf("%s has mode %04o: %s; fix: %s", name, f.Mode.Perm(), strings.Join(who, ", "), f.Fix())
}

// Fix is the command that makes the file private.
func (f LooseFile) Fix() string {
	return "chmod 600 " + shellQuote(f.Path)
}

// LooseFiles checks the mode of each file in use that holds a secret: the
// TLS key (unless tls.mode is "off"), users_file, admin.token_file (when the
// admin listener is on) and file, the main configuration file ("" for none),
// when it holds [[users]]. It returns those others may read or change (see
// LooseFile), for a warning: wharf still starts. A file it can't stat is
// left out: loading the configuration already read it. On Windows, where
// mode bits say nothing of who may read a file, it returns nothing.
func (c Config) LooseFiles(file string) []LooseFile {
	if runtime.GOOS == "windows" {
		return nil
	}

	type secret struct{ key, path string }

	var secrets []secret
	if !c.TLS.Mode.Is(server.TLSOff) && c.TLS.KeyFile != "" {
		secrets = append(secrets, secret{"tls.key_file", c.TLS.KeyFile})
	}
	if c.UsersFile != "" {
		secrets = append(secrets, secret{"users_file", c.UsersFile})
	}
	if c.Admin.Listen != "" && c.Admin.TokenFile != "" {
		secrets = append(secrets, secret{"admin.token_file", c.Admin.TokenFile})
	}
	if file != "" && slices.ContainsFunc(c.Users, func(u User) bool { return u.file == "" }) {
		secrets = append(secrets, secret{"config", file})
	}

	var loose []LooseFile
	for _, s := range secrets {
		info, err := os.Stat(s.path)
		if err != nil {
			continue
		}

		if mode := info.Mode().Perm(); mode&looseBits != 0 {
			loose = append(loose, LooseFile{Key: s.key, Path: s.path, Mode: mode})
		}
	}

	return loose
}

// shellQuote quotes path for a shell when it holds more than letters,
// digits and the punctuation of ordinary paths.
func shellQuote(path string) string {
	ordinary := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@%=", r)
	}
	if path != "" && strings.IndexFunc(path, func(r rune) bool { return !ordinary(r) }) < 0 {
		return path
	}

	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}
