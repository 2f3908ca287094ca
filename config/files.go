package config

import (
	"slices"
	"time"

	"wharf/server"
)

// MinWatchInterval is the shortest watch_interval: each look is a few
// stat calls, but a look every microsecond would be a busy loop.
const MinWatchInterval = 100 * time.Millisecond

// Files returns the files that loading the configuration reads and that a
// reload may find changed: file itself (the configuration file, "" for
// none), users_file, banner_file, anonymous.login_message_file, the TLS
// certificate and key unless tls.mode is "off", and admin.token_file when
// the admin listener is on. Each path appears once, as written. Folders
// (roots, homes) are not files a reload reads, and the storage secrets of
// WHARF_STORAGE_*_FILE need a restart.
func (c Config) Files(file string) []string {
	var files []string

	add := func(path string) {
		if path != "" && !slices.Contains(files, path) {
			files = append(files, path)
		}
	}

	add(file)
	add(c.UsersFile)
	add(c.BannerFile)
	if c.Anonymous.Enabled {
		add(c.Anonymous.LoginMessageFile)
	}
	if !c.TLS.Mode.Is(server.TLSOff) {
		add(c.TLS.CertFile)
		add(c.TLS.KeyFile)
	}
	if c.Admin.Listen != "" {
		add(c.Admin.TokenFile)
	}

	return files
}
