package main

import (
	"context"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"wharf/admin"
	"wharf/auth"
	"wharf/config"
	"wharf/server"
)

// reloader loads the configuration again while wharf runs and applies what
// can change. SIGHUP, a change to a file the configuration reads (see
// watch) and POST /reload on the admin listener all reload through it, one
// at a time, with the same validation: a configuration that does not
// validate changes nothing.
type reloader struct {
	src     config.Sources
	started config.Config // restart-only keys keep these values
	srv     *server.Server
	adm     *admin.Server // nil without the admin listener; set before anything reloads
	log     *zap.Logger

	mu      sync.Mutex           // one reload at a time; guards what follows
	files   []string             // the files watched (see config.Config.Files)
	seen    map[string]fileState // how each looked at the last reload, or since
	pending []string             // changed since, reloaded after a quiet look
}

func newReloader(src config.Sources, started config.Config, srv *server.Server, log *zap.Logger) *reloader {
	r := &reloader{src: src, started: started, srv: srv, log: log}
	r.files = started.Files(src.Path())
	r.seen = snapshot(r.files)

	return r
}

// reload loads the configuration again from src, the same file, users_file,
// environment and flags (public_host is looked up again, banner_file,
// login_message_file and admin.token_file are read again, and with
// create_missing the folders that are missing are made), and applies what
// can change while sessions run: accounts, bandwidth, bans and their allow
// list, the TLS certificate, the address PASV announces, the greeting, the
// anonymous login message, the snapshot folders and the admin listener's token. A configuration
// that does not validate, a
// broken banner_file included, changes nothing, and reload returns why. Else
// it returns the changed keys that take effect only after a restart, each
// also logged in a warning. trigger says what asked for the reload, for the
// log.
func (r *reloader) reload(trigger string) (restart []string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()

	// A file that changes from here on is seen by the next look.
	r.seen, r.pending = snapshot(r.files), nil

	cfg, err := r.apply()
	r.watchFiles(cfg, err == nil)

	if err != nil {
		r.log.Error("reload refused, keeping the running configuration", zap.String("file", r.src.Path()),
			zap.String("trigger", trigger), zap.Error(err))

		return nil, err
	}

	restart = needRestart(r.started, cfg)
	for _, key := range restart {
		r.log.Warn("changed key takes effect only after a restart", zap.String("key", key))
	}

	warnLooseFiles(r.log, cfg, r.src)

	return restart, nil
}

// apply loads the configuration and hands the server what it can change.
func (r *reloader) apply() (config.Config, error) {
	cfg, _, err := r.src.Load()
	if err != nil {
		return config.Config{}, err
	}

	if err := prepareFolders(cfg, r.log); err != nil {
		return config.Config{}, err
	}

	accounts, err := auth.New(accountOptions(cfg))
	if err != nil {
		return config.Config{}, err
	}

	opts := serverOptions(cfg)

	if err := r.srv.Reload(server.Reload{
		Accounts:     accounts,
		Bandwidth:    opts.Bandwidth,
		Ban:          opts.Ban,
		TLSCertFile:  opts.TLSCertFile,
		TLSKeyFile:   opts.TLSKeyFile,
		PublicHost:   opts.PublicHost,
		Banner:       opts.Banner,
		LoginMessage: opts.LoginMessage,
		Snapshots:    opts.Snapshots,
	}); err != nil {
		return config.Config{}, err
	}

	// admin.token_file is read only while admin.listen is set: a file that
	// turns the listener off (which waits for a restart) leaves the running
	// one its token rather than none.
	if r.adm != nil && cfg.Admin.Listen != "" {
		r.adm.SetToken(cfg.Admin.Token)
	}

	return cfg, nil
}

// watchFiles sets the files to watch after a reload: those of the
// configuration just applied, or after a refusal those of the refused one
// too, read without validation, so that creating a users_file it names but
// lacked, for one, is noticed. A file new to the list is first seen now.
func (r *reloader) watchFiles(applied config.Config, ok bool) {
	path := r.src.Path()

	if ok {
		r.files = applied.Files(path)
	} else if refused, _, err := r.src.Merge(); err == nil {
		r.files = slices.Compact(slices.Sorted(slices.Values(append(r.files, refused.Files(path)...))))
	}

	for p, st := range snapshot(r.files) {
		if _, known := r.seen[p]; !known {
			r.seen[p] = st
		}
	}
}

// watch looks at the watched files every interval until ctx ends, and
// reloads when one changed and then stayed unchanged for one look: a
// Kubernetes ConfigMap or Secret update, a certificate and key renewed one
// after the other, an editor's save. It does nothing when every is 0.
//
// It polls with stat, following symbolic links, rather than waiting for
// inotify events: Kubernetes updates a mounted ConfigMap or Secret by
// swapping a "..data" symbolic link in the folder, so the file named in
// the configuration never changes itself and inotify would have to watch
// every folder along the links; a poll sees the target's new inode, on
// every file system (NFS and FUSE mounts have no inotify), at the cost of a
// few stat calls each look.
func (r *reloader) watch(ctx context.Context, every time.Duration) {
	if every <= 0 {
		return
	}

	tick := time.NewTicker(every)
	defer tick.Stop()

	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}

		if changed := r.poll(); len(changed) > 0 {
			r.log.Info("watched files changed", zap.Strings("paths", changed))
			_, _ = r.reload("file change") // a refusal is logged
		}
	}
}

// poll looks at the watched files once. It returns, sorted, the files that
// changed since the last reload once a look finds none of them changed
// again, and nil until then.
func (r *reloader) poll() []string {
	r.mu.Lock()
	defer r.mu.Unlock()

	now := snapshot(r.files)

	var changed []string
	for path, st := range now {
		if old, known := r.seen[path]; known && old != st {
			changed = append(changed, path)
		}
	}

	r.seen = now

	if len(changed) > 0 {
		r.pending = slices.Compact(slices.Sorted(slices.Values(append(r.pending, changed...))))

		return nil
	}

	pending := r.pending
	r.pending = nil

	return pending
}

// fileState is what a look at a file compares: a file replaced (a new
// inode, as a Kubernetes "..data" swap or a rename over it gives), rewritten
// (size, modification time) or made unreadable.
type fileState struct {
	missing  bool // or unreadable
	dev, ino uint64
	size     int64
	mtime    int64 // nanoseconds
	mode     fs.FileMode
}

// snapshot stats each file, following symbolic links.
func snapshot(files []string) map[string]fileState {
	m := make(map[string]fileState, len(files))

	for _, path := range files {
		info, err := os.Stat(path)
		if err != nil {
			m[path] = fileState{missing: true}

			continue
		}

		st := fileState{size: info.Size(), mtime: info.ModTime().UnixNano(), mode: info.Mode()}
		if sys, ok := info.Sys().(*syscall.Stat_t); ok {
			st.dev, st.ino = uint64(sys.Dev), sys.Ino //nolint:unconvert // Dev is not a uint64 everywhere
		}

		m[path] = st
	}

	return m
}

// reloadKeys classifies every key of the configuration, in the order of
// config.toml.example: reload true when a reload (SIGHUP, a watched file
// changing, POST /reload) applies a change
// (reload rebuilds the accounts, which carry anonymous.* but the drop-box
// limits, users_file, [[users]] and tls.clear_text_accounts, and hands the
// server the bandwidth, the bans with their allow list, the certificate,
// public_host, the greeting and the login message, [[snapshots]], and the
// admin listener its token), false when the change waits for a restart. server.Reload
// carries none of the other server options: [listing], the drop-box limits,
// [access], ban.ipv6_prefix, max_listing_memory, upload_resume_window and
// tls.require_session_reuse wait for a restart, and so does the rest of
// [admin] and [http], whose listeners start once. [[users]] is one key. TestReloadKeysClassifyEveryKey walks config.Config by
// reflection, so a new key can't be left out.
var reloadKeys = []struct {
	key    string
	reload bool
}{
	{"listen", false},
	{"public_host", true},
	{"passive_ports", false},
	{"active_mode", false},
	{"idle_timeout", false},
	{"max_clients", false},
	{"max_clients_per_ip", false},
	{"banner", true},
	{"banner_file", true},       // read again by every reload
	{"shutdown_timeout", false}, // serve keeps the value it started with
	{"watch_interval", false},   // so does the watcher
	{"ascii_conversion", false},
	{"upload_mode", false},
	{"upload_sync", false},
	{"data_timeout", false},
	{"max_list_entries", false},
	{"login_timeout", false},
	{"users_file", true},
	{"create_missing", true}, // every reload makes what is missing, a new account's home too
	{"max_listing_memory", false},
	{"upload_resume_window", false},
	{"log.level", false},
	{"log.format", false},
	{"log.transfer_log", false},
	{"log.file", false}, // SIGHUP reopens the file it started with
	{"tls.mode", false},
	{"tls.cert_file", true},
	{"tls.key_file", true},
	{"tls.clear_text_accounts", true}, // for logins after the reload
	{"tls.require_session_reuse", false},
	{"anonymous.enabled", true},
	{"anonymous.root", true},
	{"anonymous.upload_dir", true},
	{"anonymous.max_upload_size", true},
	{"anonymous.login_message_file", true},  // read again by every reload
	{"anonymous.world_readable_only", true}, // for logins after the reload
	{"anonymous.shares_homes", true},        // a rule of validation, which every reload runs
	{"anonymous.upload_quota", false},       // the drop-box limits are server options
	{"anonymous.upload_max_files", false},
	{"anonymous.upload_max_depth", false},
	{"anonymous.upload_rate", false},
	{"anonymous.upload_bytes_per_hour", false},
	{"bandwidth.total_download", true},
	{"bandwidth.total_upload", true},
	{"bandwidth.session_download", true},
	{"bandwidth.session_upload", true},
	{"ban.max_failures", true},
	{"ban.window", true},
	{"ban.duration", true},
	{"ban.ipv6_prefix", false}, // a server option beside BanOptions: bans and max_clients_per_ip count by it
	{"ban.allow", true},
	{"access.allow", false},
	{"access.deny", false},
	{"proxy_protocol.trusted", false}, // the listeners read it once, as [access]
	{"admin.listen", false},
	{"admin.pprof", false},
	{"admin.token_file", true}, // its token too, read again, for the next request; kept when admin.listen goes
	{"admin.hosts", false},
	{"storage.backend", false},
	{"storage.endpoint", false},
	{"storage.region", false},
	{"storage.bucket", false},
	{"storage.prefix", false},
	{"storage.access_key", false},
	{"storage.secret_key", false},
	{"storage.path_style", false},
	{"storage.startup_timeout", false}, // waited for at start only
	{"storage.upload_memory", false},
	{"storage.abandoned_upload_age", false},
	{"listing.symlinks", false},
	{"listing.hide", false},
	{"listing.deny", false},
	{"listing.message_file", false},
	{"listing.recursive", false},
	{"listing.cache_ttl", false},
	{"users", true},        // each user's tls included, for logins after the reload
	{"snapshots", true},    // for sessions after the reload; sessions keep the copies they hold
	{"http.listen", false}, // the listener starts once
	{"http.tls", false},    // its certificate is tls.cert_file's, which a reload reads again
	// [hash] is server options.
	{"hash.files", false},
	{"hash.search_up", false},
	{"hash.compute_max_size", false},
	// [manifest] is server options.
	{"manifest.enabled", false},
	{"manifest.interval", false},
	{"manifest.max_entries", false},
	{"manifest.time_limit", false},
}

// needRestart lists the keys that changed from old to cur but that a reload
// cannot apply (see reloadKeys).
func needRestart(old, cur config.Config) []string {
	var keys []string

	for _, k := range reloadKeys {
		if !k.reload && !reflect.DeepEqual(keyValue(old, k.key), keyValue(cur, k.key)) {
			keys = append(keys, k.key)
		}
	}

	return keys
}

// keyValue returns the value of the dotted key ("log.level") in c, or nil if
// no field has that key.
func keyValue(c config.Config, key string) any {
	v := reflect.ValueOf(c)

	for name := range strings.SplitSeq(key, ".") {
		if v = fieldByKey(v, name); !v.IsValid() {
			return nil
		}
	}

	return v.Interface()
}

// fieldByKey returns the field of the struct v whose toml tag names key, or
// the zero Value if there is none.
func fieldByKey(v reflect.Value, key string) reflect.Value {
	for i := range v.NumField() {
		if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("toml"), ","); tag == key {
			return v.Field(i)
		}
	}

	return reflect.Value{}
}
