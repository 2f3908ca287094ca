package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"wharf/auth"
	"wharf/server"
)

// served returns a temp folder to serve anonymously, and the env entry
// that serves it, so that a configuration without a file validates.
func served(t *testing.T) (dir, entry string) {
	t.Helper()

	dir = t.TempDir()

	return dir, "WHARF_ANONYMOUS_ROOT=" + dir
}

func TestEnvSetsEveryType(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		env  []string
		want func(c *Config)
	}{
		{"a string sets listen", []string{"WHARF_LISTEN=127.0.0.1:2100"}, func(c *Config) { c.Listen = "127.0.0.1:2100" }},
		{"a string in a table sets log.format", []string{"WHARF_LOG_FORMAT=json"}, func(c *Config) { c.Log.Format = LogJSON }},
		{"an empty string clears a key", []string{"WHARF_BANNER="}, func(c *Config) { c.Banner = "" }},
		{"a public_host address is resolved", []string{"WHARF_PUBLIC_HOST=203.0.113.9"}, func(c *Config) {
			c.PublicHost, c.PublicIP = "203.0.113.9", "203.0.113.9"
		}},
		{"false sets a bool", []string{"WHARF_ACTIVE_MODE=false"}, func(c *Config) { c.ActiveMode = false }},
		{"1 sets a bool too", []string{"WHARF_ADMIN_PPROF=1"}, func(c *Config) { c.Admin.Pprof = true }},
		{"a bool in [tls]", []string{"WHARF_TLS_CLEAR_TEXT_ACCOUNTS=true"}, func(c *Config) { c.TLS.ClearTextAccounts = true }},
		{"an integer", []string{"WHARF_MAX_CLIENTS=7", "WHARF_BAN_MAX_FAILURES=0"}, func(c *Config) {
			c.MaxClients = 7
			c.Ban.MaxFailures = 0
		}},
		{"a duration", []string{"WHARF_IDLE_TIMEOUT=15m", "WHARF_BAN_WINDOW=90s"}, func(c *Config) {
			c.IdleTimeout = Duration{15 * time.Minute}
			c.Ban.Window = Duration{90 * time.Second}
		}},
		{"a size", []string{"WHARF_ANONYMOUS_MAX_UPLOAD_SIZE=1.5 GiB", "WHARF_BANDWIDTH_TOTAL_DOWNLOAD=10MB"}, func(c *Config) {
			c.Anonymous.MaxUploadSize = Size{3 << 29}
			c.Bandwidth.TotalDownload = Size{10_000_000}
		}},
		{"a port range", []string{"WHARF_PASSIVE_PORTS=40000-40010"}, func(c *Config) { c.PassivePorts = []int{40000, 40010} }},
		{"a one-port range", []string{"WHARF_PASSIVE_PORTS=40000-40000"}, func(c *Config) { c.PassivePorts = []int{40000, 40000} }},
		{"the storage keys", []string{
			"WHARF_STORAGE_BACKEND=s3", "WHARF_STORAGE_ENDPOINT=http://127.0.0.1:9000", "WHARF_STORAGE_REGION=eu-west-3",
			"WHARF_STORAGE_BUCKET=files", "WHARF_STORAGE_PREFIX=ftp/", "WHARF_STORAGE_ACCESS_KEY=AK",
			"WHARF_STORAGE_SECRET_KEY=SK", "WHARF_STORAGE_PATH_STYLE=true", "WHARF_STORAGE_STARTUP_TIMEOUT=45s",
			"WHARF_STORAGE_UPLOAD_MEMORY=1GiB", "WHARF_STORAGE_ABANDONED_UPLOAD_AGE=2h",
		}, func(c *Config) {
			c.Storage = Storage{Backend: BackendS3, Endpoint: "http://127.0.0.1:9000", Region: "eu-west-3", Bucket: "files",
				Prefix: "ftp/", AccessKey: "AK", SecretKey: "SK", PathStyle: true, StartupTimeout: Duration{45 * time.Second},
				UploadMemory: Size{1 << 30}, AbandonedUploadAge: Duration{2 * time.Hour}}
		}},
		{"a symlinks mode", []string{"WHARF_LISTING_SYMLINKS=targets"}, func(c *Config) {
			c.Listing.Symlinks = SymlinkMode(server.SymlinksAsTargets)
		}},
		{"a list of patterns, comma-separated", []string{"WHARF_LISTING_HIDE=*.tmp, README* ,[a-z]?"}, func(c *Config) {
			c.Listing.Hide = []string{"*.tmp", "README*", "[a-z]?"}
		}},
		{"an empty list replaces the defaults", []string{"WHARF_LISTING_DENY="}, func(c *Config) { c.Listing.Deny = []string{} }},
		{"the other [listing] and [anonymous] keys", []string{
			"WHARF_LISTING_MESSAGE_FILE=", "WHARF_LISTING_RECURSIVE=true", "WHARF_ANONYMOUS_WORLD_READABLE_ONLY=false",
		}, func(c *Config) {
			c.Listing.MessageFile, c.Listing.Recursive, c.Anonymous.WorldReadableOnly = "", true, false
		}},
		{"a list of networks, comma-separated", []string{
			"WHARF_BAN_ALLOW=192.0.2.0/24, 2001:db8::7", "WHARF_ACCESS_ALLOW=10.0.0.0/8", "WHARF_ACCESS_DENY=10.9.9.9",
		}, func(c *Config) {
			c.Ban.Allow = []Network{{netip.MustParsePrefix("192.0.2.0/24")}, {netip.MustParsePrefix("2001:db8::7/128")}}
			c.Access.Allow = []Network{{netip.MustParsePrefix("10.0.0.0/8")}}
			c.Access.Deny = []Network{{netip.MustParsePrefix("10.9.9.9/32")}}
		}},
		{"an empty list of networks", []string{"WHARF_BAN_ALLOW="}, func(c *Config) { c.Ban.Allow = []Network{} }},
		{"the keys of issue 12", []string{
			"WHARF_MAX_LISTING_MEMORY=1GiB", "WHARF_UPLOAD_RESUME_WINDOW=0s", "WHARF_TLS_REQUIRE_SESSION_REUSE=false",
			"WHARF_ANONYMOUS_UPLOAD_QUOTA=1TB", "WHARF_ANONYMOUS_UPLOAD_MAX_FILES=5", "WHARF_ANONYMOUS_UPLOAD_MAX_DEPTH=0",
			"WHARF_ANONYMOUS_UPLOAD_RATE=6", "WHARF_ANONYMOUS_UPLOAD_BYTES_PER_HOUR=0", "WHARF_BAN_IPV6_PREFIX=48",
			"WHARF_ADMIN_HOSTS=wharf.internal,wharf.example",
		}, func(c *Config) {
			c.MaxListingMemory, c.UploadResumeWindow, c.TLS.RequireSessionReuse = Size{1 << 30}, Duration{0}, false
			c.Anonymous.UploadQuota, c.Anonymous.UploadMaxFiles, c.Anonymous.UploadMaxDepth = Size{1e12}, 5, 0
			c.Anonymous.UploadRate, c.Anonymous.UploadBytesPerHour = 6, Size{0}
			c.Ban.IPv6Prefix = 48
			c.Admin.Hosts = []string{"wharf.internal", "wharf.example"}
		}},
		{"a later entry wins", []string{"WHARF_MAX_CLIENTS=7", "WHARF_MAX_CLIENTS=8"}, func(c *Config) { c.MaxClients = 8 }},
		{"other variables are ignored", []string{"PATH=/bin", "wharf_listen=nope", "HOME"}, func(*Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			dir, root := served(t)
			got, unknown, err := LoadEnv("", append(tt.env, root))
			if err != nil {
				t.Fatal(err)
			}
			if len(unknown) != 0 {
				t.Errorf("unknown = %q, want none", unknown)
			}

			want := Default()
			want.Anonymous.Root = dir
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("LoadEnv(%q) =\n%+v\nwant\n%+v", tt.env, got, want)
			}
		})
	}
}

func TestEnvBadValuesNameTheVariable(t *testing.T) {
	t.Parallel()

	tests := []struct {
		env  string
		want string // the whole error
	}{
		{"WHARF_IDLE_TIMEOUT=15", `WHARF_IDLE_TIMEOUT: "15": want a duration such as "15m"`},
		{"WHARF_ACTIVE_MODE=maybe", `WHARF_ACTIVE_MODE: "maybe": want true or false`},
		{"WHARF_MAX_CLIENTS=lots", `WHARF_MAX_CLIENTS: "lots": want an integer`},
		{"WHARF_BANDWIDTH_TOTAL_UPLOAD=10 mb", `WHARF_BANDWIDTH_TOTAL_UPLOAD: "10 mb": unknown unit "mb" (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)`},
		{"WHARF_PASSIVE_PORTS=50000", `WHARF_PASSIVE_PORTS: "50000": want a port range such as "50000-50100"`},
		{"WHARF_PASSIVE_PORTS=[50000, 50100]", `WHARF_PASSIVE_PORTS: "[50000, 50100]": want a port range such as "50000-50100"`},
		// Values that decode but break a rule: the key is named after the variable.
		{"WHARF_PASSIVE_PORTS=50100-50000", `WHARF_PASSIVE_PORTS: passive_ports: 50100 > 50000: range out of order`},
		{"WHARF_MAX_CLIENTS=0", `WHARF_MAX_CLIENTS: max_clients: must be at least 1, got 0`},
		{"WHARF_LOG_LEVEL=loud", `WHARF_LOG_LEVEL: "loud" is not a log level (debug, info, warn or error)`},
		{"WHARF_ANONYMOUS_ROOT=/does/not/exist", `WHARF_ANONYMOUS_ROOT: anonymous.root "/does/not/exist": no such directory`},
		{"WHARF_LISTING_SYMLINKS=both", `WHARF_LISTING_SYMLINKS: "both" is not a symlinks mode (links or targets)`},
		{"WHARF_LISTING_DENY=.~tmp~,,a/b", "WHARF_LISTING_DENY: listing.deny[1]: empty pattern\n" +
			`WHARF_LISTING_DENY: listing.deny[2]: "a/b": a pattern matches one name, so it can't hold "/"`},
		{"WHARF_LISTING_MESSAGE_FILE=a/.message",
			`WHARF_LISTING_MESSAGE_FILE: listing.message_file: "a/.message": a file name, not a path (no "/"): it is looked for in each folder`},
		{"WHARF_BANNER_FILE=/does/not/exist",
			`WHARF_BANNER_FILE: banner_file "/does/not/exist": open /does/not/exist: no such file or directory`},
		{"WHARF_BAN_ALLOW=10.0.0.0/8,nope", `WHARF_BAN_ALLOW: ban.allow[1]: "nope" is not an IP address or network ` +
			`(write it like "192.0.2.0/24", "2001:db8::/32" or "192.0.2.7")`},
		{"WHARF_ACCESS_DENY=192.0.2.0/24,", `WHARF_ACCESS_DENY: access.deny[1]: "" is not an IP address or network ` +
			`(write it like "192.0.2.0/24", "2001:db8::/32" or "192.0.2.7")`},
		{"WHARF_BAN_IPV6_PREFIX=0", "WHARF_BAN_IPV6_PREFIX: ban.ipv6_prefix: must be from 1 to 128 " +
			"(64 counts a /64, what one host usually gets; 128 counts each address), got 0"},
		{"WHARF_ANONYMOUS_UPLOAD_RATE=-1", "WHARF_ANONYMOUS_UPLOAD_RATE: anonymous.upload_rate: must not be negative (0 is no limit), got -1"},
		{"WHARF_UPLOAD_RESUME_WINDOW=24", `WHARF_UPLOAD_RESUME_WINDOW: "24": want a duration such as "15m"`},
		{"WHARF_ADMIN_TOKEN_FILE=/does/not/exist", "WHARF_ADMIN_TOKEN_FILE: admin.token_file \"/does/not/exist\": " +
			"open /does/not/exist: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.env+" is refused", func(t *testing.T) {
			t.Parallel()

			_, root := served(t)
			_, _, err := LoadEnv("", []string{root, "WHARF_ADMIN_LISTEN=127.0.0.1:0", tt.env})
			if err == nil || err.Error() != tt.want {
				t.Errorf("LoadEnv(%q) = %v, want %q", tt.env, err, tt.want)
			}
		})
	}
}

// Flags beat the environment, which beats the file, which beats the defaults.
func TestPrecedence(t *testing.T) {
	t.Parallel()

	dir, root := served(t)
	file := filepath.Join(dir, "wharf.toml")
	writeTOML(t, file, "listen = \"127.0.0.1:2001\"\npublic_host = \"192.0.2.1\"\n[log]\nlevel = \"warn\"\n")

	tests := []struct {
		name       string
		file       string
		env        []string
		flags      map[string]string
		wantListen string
		wantLevel  string
		wantHost   string
	}{
		{"defaults alone", "", nil, nil, "0.0.0.0:2121", "info", ""},
		{"the file beats the defaults", file, nil, nil, "127.0.0.1:2001", "warn", "192.0.2.1"},
		{"the environment beats the file", file, []string{"WHARF_LISTEN=127.0.0.1:2002", "WHARF_LOG_LEVEL=debug"},
			nil, "127.0.0.1:2002", "debug", "192.0.2.1"},
		{"an empty variable still counts", file, []string{"WHARF_PUBLIC_HOST="}, nil, "127.0.0.1:2001", "warn", ""},
		{"flags beat the environment", file, []string{"WHARF_LISTEN=127.0.0.1:2002", "WHARF_PUBLIC_HOST=192.0.2.2"},
			map[string]string{"listen": "127.0.0.1:2003", "public_host": "192.0.2.3", "log.level": "error"},
			"127.0.0.1:2003", "error", "192.0.2.3"},
		{"flags beat the defaults", "", nil, map[string]string{"listen": "127.0.0.1:2004"}, "127.0.0.1:2004", "info", ""},
		{"WHARF_CONFIG names the file", "", []string{"WHARF_CONFIG=" + file}, nil, "127.0.0.1:2001", "warn", "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			src := Sources{File: tt.file, Env: append(slices.Clone(tt.env), root), Flags: tt.flags}
			c, _, err := src.Load()
			if err != nil {
				t.Fatal(err)
			}

			if c.Listen != tt.wantListen || c.Log.Level.String() != tt.wantLevel || c.PublicHost != tt.wantHost {
				t.Errorf("listen, log.level, public_host = %q, %q, %q; want %q, %q, %q",
					c.Listen, c.Log.Level, c.PublicHost, tt.wantListen, tt.wantLevel, tt.wantHost)
			}
		})
	}
}

func TestSourcesPath(t *testing.T) {
	t.Parallel()

	env := []string{"WHARF_CONFIG=/etc/wharf/env.toml"}
	if got := (Sources{File: "flag.toml", Env: env}).Path(); got != "flag.toml" {
		t.Errorf("Path() with -config = %q, want flag.toml", got)
	}
	if got := (Sources{Env: env}).Path(); got != "/etc/wharf/env.toml" {
		t.Errorf("Path() with WHARF_CONFIG = %q", got)
	}
	if got := (Sources{}).Path(); got != "" {
		t.Errorf("Path() with neither = %q, want none", got)
	}

	_, _, err := Sources{Env: []string{"WHARF_CONFIG=" + filepath.Join(t.TempDir(), "missing.toml")}}.Load()
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "WHARF_CONFIG: read config: ") {
		t.Errorf("Load() with a missing WHARF_CONFIG = %v", err)
	}
}

func TestFlagErrorsNameTheFlag(t *testing.T) {
	t.Parallel()

	_, root := served(t)
	_, _, err := Sources{Env: []string{root}, Flags: map[string]string{"listen": "nope"}}.Load()
	if want := `-listen: listen: want host:port such as "0.0.0.0:2121"`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load() = %v, want it to start with %q", err, want)
	}

	_, _, err = Sources{Env: []string{root}, Flags: map[string]string{"users": "x"}}.Load()
	if want := `-users: "users" is not a key that a flag can set`; err == nil || err.Error() != want {
		t.Errorf("Load() = %v, want %q", err, want)
	}
}

func TestUnknownVariablesAreWarnings(t *testing.T) {
	t.Parallel()

	dir, root := served(t)
	users := filepath.Join(dir, "users.toml")
	writeTOML(t, users, "")
	secret := filepath.Join(dir, "secret")
	writeTOML(t, secret, "s3cr3t\n")

	env := []string{
		root, "WHARF_LISTEN=127.0.0.1:0", "WHARF_PASIVE_PORTS=1-2", "WHARF_USERS=alice", "WHARF_BIN=/usr/bin/wharf",
		"WHARF_CONFIG=", "WHARF_USERS_FILE=" + users, "WHARF_STORAGE_SECRET_KEY_FILE=" + secret,
		"WHARF_STORAGE_ACCESS_KEY=AK", "WHARF_LISTEN_FILE=x", "WHARF_TLS_CERT_FILE_FILE=x", "PATH=/bin",
	}
	_, unknown, err := LoadEnv("", env)
	if err != nil {
		t.Fatal(err)
	}

	want := []string{"WHARF_BIN", "WHARF_LISTEN_FILE", "WHARF_PASIVE_PORTS", "WHARF_TLS_CERT_FILE_FILE", "WHARF_USERS"}
	if !slices.Equal(unknown, want) {
		t.Errorf("unknown = %q, want %q", unknown, want)
	}

	// An error elsewhere does not hide them.
	_, unknown, err = LoadEnv("", append(env, "WHARF_MAX_CLIENTS=x"))
	if err == nil || !slices.Equal(unknown, want) {
		t.Errorf("with an error: unknown = %q, err = %v; want %q and an error", unknown, err, want)
	}
}

func TestSecretFiles(t *testing.T) {
	t.Parallel()

	dir, root := served(t)
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		writeTOML(t, path, "%s", content)

		return path
	}
	access := write("access", "AKIA\n")
	secret := write("secret", "s3cr3t\r\n")
	empty := write("empty", "\n")
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name       string
		env        []string
		wantAccess string
		wantSecret string
		wantErr    string
	}{
		{
			name:       "both keys come from files without their newline",
			env:        []string{"WHARF_STORAGE_ACCESS_KEY_FILE=" + access, "WHARF_STORAGE_SECRET_KEY_FILE=" + secret},
			wantAccess: "AKIA", wantSecret: "s3cr3t",
		},
		{
			name:    "a missing file names the variable and the file",
			env:     []string{"WHARF_STORAGE_SECRET_KEY_FILE=" + missing},
			wantErr: "WHARF_STORAGE_SECRET_KEY_FILE: open " + missing + ": no such file or directory",
		},
		{
			name:    "an empty file is refused",
			env:     []string{"WHARF_STORAGE_ACCESS_KEY_FILE=" + empty},
			wantErr: "WHARF_STORAGE_ACCESS_KEY_FILE: " + `"` + empty + `" is empty`,
		},
		{
			name:    "a folder is refused",
			env:     []string{"WHARF_STORAGE_ACCESS_KEY_FILE=" + dir},
			wantErr: "WHARF_STORAGE_ACCESS_KEY_FILE: " + `"` + dir + `" is not a regular file`,
		},
		{
			name:    "the value and its file are not both given",
			env:     []string{"WHARF_STORAGE_SECRET_KEY=x", "WHARF_STORAGE_SECRET_KEY_FILE=" + secret},
			wantErr: "WHARF_STORAGE_SECRET_KEY_FILE: set WHARF_STORAGE_SECRET_KEY or WHARF_STORAGE_SECRET_KEY_FILE, not both",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			c, _, err := LoadEnv("", append(tt.env, root))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Errorf("LoadEnv() = %v, want %q", err, tt.wantErr)
				}

				return
			}

			if err != nil {
				t.Fatal(err)
			}
			if c.Storage.AccessKey != tt.wantAccess || c.Storage.SecretKey != tt.wantSecret {
				t.Errorf("keys = %q, %q; want %q, %q", c.Storage.AccessKey, c.Storage.SecretKey, tt.wantAccess, tt.wantSecret)
			}
		})
	}
}

// The admin token comes from the file named by WHARF_ADMIN_TOKEN_FILE (a
// path, not a secret read through _FILE), trimmed, once the listener is on.
func TestAdminTokenFromTheEnvironment(t *testing.T) {
	t.Parallel()

	dir, root := served(t)
	token := filepath.Join(dir, "admin.token")
	writeTOML(t, token, "\t0123456789abcdef-token \n")

	c, unknown, err := LoadEnv("", []string{root, "WHARF_ADMIN_TOKEN_FILE=" + token})
	if err != nil || len(unknown) != 0 {
		t.Fatalf("LoadEnv() = %v, unknown %q", err, unknown)
	}
	if c.Admin.TokenFile != token || c.Admin.Token != "" {
		t.Errorf("without admin.listen: token_file, token = %q, %q; want the path and no token (not read)",
			c.Admin.TokenFile, c.Admin.Token)
	}

	c, _, err = LoadEnv("", []string{root, "WHARF_ADMIN_TOKEN_FILE=" + token, "WHARF_ADMIN_LISTEN=127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Admin.Token != "0123456789abcdef-token" {
		t.Errorf("token = %q, want the file's, trimmed", c.Admin.Token)
	}

	var printed bytes.Buffer
	if err := c.WriteTOML(&printed); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(printed.String(), "0123456789abcdef") {
		t.Errorf("the printed configuration shows the token:\n%s", printed.String())
	}
}

// A key that ends in _file holds a path: its variable is that path, not a
// file holding it.
func TestFileKeysArePaths(t *testing.T) {
	t.Parallel()

	_, root := served(t)
	c, unknown, err := Sources{Env: []string{root, "WHARF_TLS_CERT_FILE=/etc/wharf/cert.pem"}}.Merge()
	if err != nil || len(unknown) != 0 {
		t.Fatalf("Merge() = %v, unknown %q", err, unknown)
	}
	if c.TLS.CertFile != "/etc/wharf/cert.pem" {
		t.Errorf("tls.cert_file = %q, want the path itself", c.TLS.CertFile)
	}
}

func TestUsersFile(t *testing.T) {
	t.Parallel()

	user := func(name, home string) string {
		return "[[users]]\nname = \"" + name + "\"\npassword = \"" + testHash + "\"\nhome = \"" + home + "\"\n"
	}

	tests := []struct {
		name      string
		main      string // the main file, after users_file = ...
		users     string // the users file
		wantNames []string
		wantTLS   []auth.TLSRule // each user's, when not nil
		wantErr   []string       // lines of the error, with DIR for the temp folder
	}{
		{
			name:      "its users follow the main file's",
			main:      user("alice", "DIR"),
			users:     user("bob", "DIR") + user("carol", "DIR"),
			wantNames: []string{"alice", "bob", "carol"},
		},
		{
			name:      "it may hold no users",
			users:     "# nobody yet\n",
			wantNames: nil,
		},
		{
			name:    "a name in both files names both places",
			main:    user("alice", "DIR"),
			users:   user("bob", "DIR") + user("alice", "DIR"),
			wantErr: []string{`DIR/users.toml: users[1] "alice": duplicate name (also users[0] in DIR/wharf.toml)`},
		},
		{
			name:    "a name twice in the users file",
			users:   user("bob", "DIR") + user("bob", "DIR"),
			wantErr: []string{`DIR/users.toml: users[1] "bob": duplicate name (also users[0])`},
		},
		{
			name:  "other keys in the users file are refused, naming that file",
			users: "listen = \"0.0.0.0:21\"\n" + user("bob", "DIR") + "pasword = \"x\"\n",
			wantErr: []string{
				`DIR/users.toml: users[0] "bob": unknown key "pasword"`,
				`DIR/users.toml: unknown key "listen"`,
			},
		},
		{
			name:    "a problem of a user in the users file names that file",
			users:   user("bob", "DIR/nope"),
			wantErr: []string{`DIR/users.toml: users[0] "bob": home "DIR/nope": no such directory`},
		},
		{
			name:      "a user's tls is read from the users file too",
			main:      user("alice", "DIR"),
			users:     user("bob", "DIR") + "tls = \"optional\"\n",
			wantNames: []string{"alice", "bob"},
			wantTLS:   []auth.TLSRule{auth.TLSDefault, auth.TLSOptional},
		},
		{
			name:    "a tls that is not a rule names the users file",
			users:   user("bob", "DIR") + "tls = \"sometimes\"\n",
			wantErr: []string{`DIR/users.toml: users[0] "bob": tls: "sometimes" is not a TLS rule (required or optional)`},
		},
		{
			name:  "a tls that contradicts the main file's tls.mode names the users file",
			main:  "[tls]\nmode = \"off\"\n",
			users: user("bob", "DIR") + "tls = \"required\"\n",
			wantErr: []string{
				`DIR/users.toml: users[0] "bob": tls: "required", but tls.mode is "off": this account could never log in`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			dir := t.TempDir()
			fill := func(s string) string { return strings.ReplaceAll(s, "DIR", dir) }

			mainFile, usersFile := filepath.Join(dir, "wharf.toml"), filepath.Join(dir, "users.toml")
			writeTOML(t, usersFile, "%s", fill(tt.users))
			writeTOML(t, mainFile, "users_file = %q\n[anonymous]\nroot = %q\n%s", usersFile, dir, fill(tt.main))

			c, err := Load(mainFile)
			if tt.wantErr != nil {
				want := fill(strings.Join(tt.wantErr, "\n"))
				if err == nil || err.Error() != want {
					t.Errorf("Load() =\n%v\nwant\n%s", err, want)
				}

				return
			}

			if err != nil {
				t.Fatal(err)
			}

			var names []string
			for _, u := range c.Users {
				names = append(names, u.Name)
			}
			if !slices.Equal(names, tt.wantNames) {
				t.Errorf("users = %q, want %q", names, tt.wantNames)
			}

			for i, want := range tt.wantTLS {
				if got := auth.TLSRule(c.Users[i].TLS); got != want {
					t.Errorf("users[%d].TLS = %q, want %q", i, got, want)
				}
			}
		})
	}
}

func TestUsersFileFromTheEnvironment(t *testing.T) {
	t.Parallel()

	dir, root := served(t)
	users := filepath.Join(dir, "users.toml")
	writeTOML(t, users, "[[users]]\nname = \"bob\"\npassword = %q\nhome = %q\n", testHash, dir)

	c, _, err := LoadEnv("", []string{root, "WHARF_USERS_FILE=" + users})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Users) != 1 || c.Users[0].Name != "bob" || c.UsersFile != users {
		t.Errorf("users = %+v, users_file %q", c.Users, c.UsersFile)
	}

	missing := filepath.Join(dir, "missing.toml")
	_, _, err = LoadEnv("", []string{root, "WHARF_USERS_FILE=" + missing})
	want := "WHARF_USERS_FILE: users_file: open " + missing + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("LoadEnv() = %v, want %q", err, want)
	}

	writeTOML(t, users, "[[users]\n")
	if _, _, err = LoadEnv("", []string{root, "WHARF_USERS_FILE=" + users}); !strings.HasPrefix(fmt.Sprint(err), users+": toml: ") {
		t.Errorf("LoadEnv() with a syntax error in the users file = %v", err)
	}
}

func TestStorage(t *testing.T) {
	t.Parallel()

	s3 := []string{"WHARF_STORAGE_BACKEND=s3", "WHARF_STORAGE_BUCKET=files"}

	tests := []struct {
		name    string
		env     []string
		wantErr string // "" for none
	}{
		{"disk is the default", nil, ""},
		{"s3 with a bucket", s3, ""},
		{"other keys are not checked with disk", []string{"WHARF_STORAGE_ENDPOINT=::nope", "WHARF_STORAGE_BUCKET=UPPER"}, ""},
		{"an unknown backend", []string{"WHARF_STORAGE_BACKEND=ceph"},
			`WHARF_STORAGE_BACKEND: "ceph" is not a storage backend (disk or s3)`},
		{"s3 without a bucket", []string{"WHARF_STORAGE_BACKEND=s3"},
			`storage.bucket: required when storage.backend is "s3"`},
		{"a bucket S3 would refuse", append(slices.Clone(s3), "WHARF_STORAGE_BUCKET=My_Files"),
			`WHARF_STORAGE_BUCKET: storage.bucket: "My_Files" is not a bucket name (3-63 lower-case letters, digits, dots and hyphens)`},
		{"an http endpoint", append(slices.Clone(s3), "WHARF_STORAGE_ENDPOINT=http://127.0.0.1:9000"), ""},
		{"an https endpoint with a slash", append(slices.Clone(s3), "WHARF_STORAGE_ENDPOINT=https://s3.example.com/"), ""},
		{"an endpoint without its scheme", append(slices.Clone(s3), "WHARF_STORAGE_ENDPOINT=127.0.0.1:9000"),
			`WHARF_STORAGE_ENDPOINT: storage.endpoint: "127.0.0.1:9000" is not a URL such as "http://127.0.0.1:9000"`},
		{"an endpoint of another scheme", append(slices.Clone(s3), "WHARF_STORAGE_ENDPOINT=ftp://s3.example.com"),
			`WHARF_STORAGE_ENDPOINT: storage.endpoint: "ftp://s3.example.com": want an http or https URL`},
		{"an endpoint with a path", append(slices.Clone(s3), "WHARF_STORAGE_ENDPOINT=http://s3.example.com/files"),
			`WHARF_STORAGE_ENDPOINT: storage.endpoint: "http://s3.example.com/files": want the service's address only`},
		{"an endpoint with credentials", append(slices.Clone(s3), "WHARF_STORAGE_ENDPOINT=http://me:pw@s3.example.com"),
			`put credentials in storage.access_key and storage.secret_key`},
		{"an empty region asks the store", append(slices.Clone(s3), "WHARF_STORAGE_REGION="), ""},
		{"an access key without its secret", append(slices.Clone(s3), "WHARF_STORAGE_ACCESS_KEY=AK"),
			`storage.secret_key: required when storage.access_key is set`},
		{"a prefix leading out", append(slices.Clone(s3), "WHARF_STORAGE_PREFIX=ftp/../other"),
			`WHARF_STORAGE_PREFIX: storage.prefix: "ftp/../other": must not contain ".."`},
		{"the drop box with s3", append(slices.Clone(s3), "WHARF_ANONYMOUS_UPLOAD_DIR=incoming"),
			`WHARF_ANONYMOUS_UPLOAD_DIR: anonymous.upload_dir: the drop box needs storage.backend = "disk"`},
		{"a root that does not exist with s3", append(slices.Clone(s3), "WHARF_ANONYMOUS_ROOT=/pub"), ""},
		{"an empty root with s3", append(slices.Clone(s3), "WHARF_ANONYMOUS_ROOT="),
			`WHARF_ANONYMOUS_ROOT: anonymous.root: required (with storage.backend = "s3", a key prefix such as "/pub")`},
		{"a root leading out with s3", append(slices.Clone(s3), "WHARF_ANONYMOUS_ROOT=/pub/../.."),
			`anonymous.root: "/pub/../..": must not contain ".."`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			_, root := served(t)
			_, _, err := LoadEnv("", append([]string{root}, tt.env...))

			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("LoadEnv(%q) = %v, want no error", tt.env, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("LoadEnv(%q) = %v, want %q", tt.env, err, tt.wantErr)
			}
		})
	}
}

// With s3, homes are key prefixes: they need not exist on disk.
func TestS3HomesAreNotChecked(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	file := filepath.Join(dir, "wharf.toml")
	writeTOML(t, file, `[anonymous]
root = "/pub"
[storage]
backend = "s3"
bucket = "files"
[[users]]
name = "alice"
password = %q
home = "/alice"
[[users]]
name = "bob"
password = %q
home = ""
`, testHash, testHash)

	_, err := Load(file)
	want := file + `: users[1] "bob": home: required (with storage.backend = "s3", a key prefix such as "/pub")`
	if err == nil || err.Error() != want {
		t.Errorf("Load() = %v, want only %q", err, want)
	}
}

func TestWriteTOMLRedacts(t *testing.T) {
	t.Parallel()

	c := Default()
	c.TLS.ClearTextAccounts = true
	c.Users = []User{
		{Name: "alice", Password: testHash, Home: "/alice", TLS: TLSRule(auth.TLSRequired), SessionDownload: &Size{1 << 20}},
		{Name: "bob", Password: testHash, Home: "/bob"},
	}
	c.Storage = Storage{Backend: BackendS3, Region: "us-east-1", Bucket: "files", AccessKey: "AKIAEXAMPLE", SecretKey: "s3cr3t"}
	c.PublicHost, c.PublicIP = "ftp.example.com", "203.0.113.9"

	var out bytes.Buffer
	if err := c.WriteTOML(&out); err != nil {
		t.Fatal(err)
	}

	text := out.String()
	for _, secret := range []string{testHash, "AKIAEXAMPLE", "s3cr3t"} {
		if strings.Contains(text, secret) {
			t.Errorf("output shows the secret %q:\n%s", secret, text)
		}
	}
	if c.Users[0].Password != testHash {
		t.Error("WriteTOML changed the configuration's users")
	}

	// It reads back as a configuration, secrets aside.
	var back Config
	if _, err := toml.Decode(text, &back); err != nil {
		t.Fatalf("output is not TOML: %v\n%s", err, text)
	}

	want := c
	want.PublicIP = ""
	want.Users = []User{
		{Name: "alice", Password: redacted, Home: "/alice", TLS: TLSRule(auth.TLSRequired), SessionDownload: &Size{1 << 20}},
		{Name: "bob", Password: redacted, Home: "/bob"},
	}
	want.Storage.AccessKey, want.Storage.SecretKey = redacted, redacted
	if !reflect.DeepEqual(back, want) {
		t.Errorf("output reads back as\n%+v\nwant\n%+v", back, want)
	}
	for _, line := range []string{"clear_text_accounts = true\n", "tls = \"required\"\n", "tls = \"\"\n"} {
		if !strings.Contains(text, line) {
			t.Errorf("output lacks %q:\n%s", line, text)
		}
	}
	if !strings.Contains(text, `# public_host "ftp.example.com" resolves to 203.0.113.9.`) {
		t.Errorf("output does not say what public_host resolves to:\n%s", text)
	}

	// Empty secrets stay empty: nothing to hide, and "" says the AWS variables are used.
	c.Storage.AccessKey, c.Storage.SecretKey = "", ""
	if r := c.Redacted(); r.Storage.AccessKey != "" || r.Storage.SecretKey != "" {
		t.Errorf("Redacted() = %+v, want the empty keys kept", r.Storage)
	}
}

// Every scalar key has its own variable, named by the rule.
func TestEveryScalarKeyHasAVariable(t *testing.T) {
	t.Parallel()

	c := Default()
	set := settings(&c)

	var scalars int
	for _, key := range tomlKeys(reflect.TypeFor[Config](), "") {
		if strings.HasPrefix(key, "users.") || strings.HasPrefix(key, "snapshots.") {
			continue // [[users]], [[snapshots]]: not scalars
		}
		scalars++

		if s, ok := set[envName(key)]; !ok || s.key != key {
			t.Errorf("%s has no variable %s", key, envName(key))
		}
	}
	if len(set) != scalars {
		t.Errorf("%d variables for %d scalar keys: two keys share a name", len(set), scalars)
	}

	for _, name := range []string{
		"WHARF_LISTEN", "WHARF_PUBLIC_HOST", "WHARF_PASSIVE_PORTS", "WHARF_ACTIVE_MODE", "WHARF_IDLE_TIMEOUT",
		"WHARF_MAX_CLIENTS", "WHARF_TLS_MODE", "WHARF_TLS_CERT_FILE", "WHARF_TLS_CLEAR_TEXT_ACCOUNTS", "WHARF_ANONYMOUS_ROOT",
		"WHARF_ANONYMOUS_MAX_UPLOAD_SIZE", "WHARF_LOG_FORMAT", "WHARF_ADMIN_LISTEN", "WHARF_BANDWIDTH_TOTAL_DOWNLOAD",
		"WHARF_BAN_MAX_FAILURES", "WHARF_STORAGE_BACKEND", "WHARF_USERS_FILE", "WHARF_BANNER_FILE",
		"WHARF_ANONYMOUS_LOGIN_MESSAGE_FILE", "WHARF_ANONYMOUS_WORLD_READABLE_ONLY", "WHARF_LISTING_SYMLINKS",
		"WHARF_LISTING_HIDE", "WHARF_LISTING_DENY", "WHARF_LISTING_MESSAGE_FILE", "WHARF_LISTING_RECURSIVE",
	} {
		if _, ok := set[name]; !ok {
			t.Errorf("no variable %s", name)
		}
	}
}

// FuzzEnv checks that no environment makes loading panic, and that whatever
// it accepts passes validation again. Each line of the input is one entry.
// It never looks up host names, and reads no file named by a variable.
func FuzzEnv(f *testing.F) {
	f.Add("WHARF_LISTEN=127.0.0.1:0\nWHARF_PASSIVE_PORTS=1-2\nWHARF_ANONYMOUS_ROOT=.")
	f.Add("WHARF_IDLE_TIMEOUT=15\nWHARF_MAX_CLIENTS=-1\nWHARF_ACTIVE_MODE=yes")
	f.Add("WHARF_PASSIVE_PORTS=-\nWHARF_PASSIVE_PORTS=99999999999999999999-1\nWHARF_BANDWIDTH_TOTAL_UPLOAD=1.5")
	f.Add("WHARF_STORAGE_BACKEND=s3\nWHARF_STORAGE_BUCKET=b\nWHARF_STORAGE_ENDPOINT=http://[::1\nWHARF_ANONYMOUS_ROOT=/pub")
	f.Add("WHARF_=\n=WHARF_\nWHARF_X\nWHARF_PUBLIC_HOST=::1")
	f.Add("WHARF_LISTING_HIDE=*,[,\\\nWHARF_LISTING_DENY=\nWHARF_LISTING_SYMLINKS=targets\nWHARF_LISTING_MESSAGE_FILE=..")

	f.Fuzz(func(t *testing.T, text string) {
		env := map[string]string{}
		for kv := range strings.SplitSeq(text, "\n") {
			if name, value, ok := strings.Cut(kv, "="); ok && !strings.HasSuffix(name, "_FILE") && name != envConfig {
				env[name] = value
			}
		}

		c, unknown, err := assemble(input{env: env}, fakeResolver{}, true)
		for _, name := range unknown {
			if !strings.HasPrefix(name, envPrefix) {
				t.Errorf("unknown variable %q lacks the prefix", name)
			}
		}
		if err != nil {
			return
		}

		p := &problems{}
		c.validate(p, fakeResolver{})
		if err := p.err(); err != nil {
			t.Errorf("accepted config fails validation again: %v", err)
		}
	})
}

// Merge reads only what decoding needs: no folder is checked, no users_file
// read, no name looked up.
func TestMergeDoesNotValidate(t *testing.T) {
	t.Parallel()

	env := []string{
		"WHARF_ANONYMOUS_ROOT=/does/not/exist", "WHARF_USERS_FILE=/does/not/exist.toml",
		"WHARF_PUBLIC_HOST=host.invalid", "WHARF_TLS_MODE=implicit", "WHARF_LISTEN=0.0.0.0:990",
	}
	c, _, err := Sources{Env: env}.Merge()
	if err != nil {
		t.Fatalf("Merge() = %v", err)
	}
	if c.Listen != "0.0.0.0:990" || !c.TLS.Mode.Is(server.TLSImplicit) || c.PublicIP != "" {
		t.Errorf("Merge() = listen %q, tls.mode %q, public IP %q", c.Listen, c.TLS.Mode, c.PublicIP)
	}

	if _, _, err := (Sources{Env: []string{"WHARF_IDLE_TIMEOUT=15"}}).Merge(); err == nil {
		t.Error("Merge() accepted a value that does not decode")
	}
}
