package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"go.uber.org/zap/zapcore"

	"wharf/auth"
	"wharf/internal/ftptest"
	"wharf/server"
)

// testHash is a bcrypt hash of "test-password".
const testHash = "$2a$10$snzLGmWj4NHnIXRtifllo.q8AiQjqVs6bt/qnNYoOTU6Aqm5/oVP."

// testFile is a case from testdata: ok/*.toml must load, bad/*.toml must be
// refused with every "# want: " text its first lines give.
type testFile struct {
	name  string // "ok/empty.toml", also the name passed to Parse
	data  []byte
	wants []string
}

func readTestdata(t *testing.T, dir string) []testFile {
	t.Helper()

	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no test files in testdata/%s", dir)
	}

	files := make([]testFile, 0, len(paths))
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}

		f := testFile{name: dir + "/" + filepath.Base(path), data: data}
		for line := range strings.Lines(string(data)) {
			want, ok := strings.CutPrefix(line, "# want: ")
			if !ok {
				break
			}
			f.wants = append(f.wants, strings.TrimRight(want, "\r\n"))
		}

		files = append(files, f)
	}

	return files
}

// makeFixtures creates, in the working directory, what the testdata files
// name by relative path: ./public (the default anonymous root) with an upload
// folder, a folder for a home inside it, a file and a link leading out, a
// link to it, a link to nothing, three homes, a plain file, a log folder, and a self-signed
// certificate with its key.
func makeFixtures(t *testing.T) {
	t.Helper()

	for _, dir := range []string{"public/incoming/carol", "public/staff", "home/alice", "home/bob", "home/carol", "logs"} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../home", "public/out"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("public", "pub-link"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere", "dangling"); err != nil {
		t.Fatal(err)
	}

	cert, key := ftptest.SelfSigned(t)
	_, otherKey := ftptest.SelfSigned(t)

	files := map[string][]byte{
		"afile":             []byte("a file, not a directory\n"),
		"public/readme.txt": []byte("a file under the anonymous root\n"),
		"garbage.pem":       []byte("not PEM at all\n"),
		"cert.pem":          cert,
		"key.pem":           key,
		"other-key.pem":     otherKey,
		"more-users.toml":   []byte("[[users]]\nname = \"dave\"\npassword = \"" + testHash + "\"\nhome = \"home/carol\"\n"),
		// Texts for banner_file and login_message_file: CR LF ends are made LF, trailing newlines dropped.
		"banner.txt":      []byte("Welcome to the mirror.\r\n  220 lines are fine when indented.\r\n\r\nSyncs at :00.\r\n\r\n"),
		"login.txt":       []byte("Be nice.\n2024-01-01: a date is not a reply code.\n"),
		"reply-code.txt":  []byte("Welcome\n220 x\n"),
		"reply-dash.txt":  []byte("Welcome\n230-more\n"),
		"reply-alone.txt": []byte("211\n"),
		"nul.txt":         []byte("a\x00b\n"),
		"bare-cr.txt":     []byte("one\rtwo\n"),
		"blank.txt":       []byte("\r\n\n"),
		"too-big.txt":     bytes.Repeat([]byte("x"), maxMessage+1),
		"just-enough.txt": bytes.Repeat([]byte("x"), maxMessage),
		// Tokens for admin.token_file: white space around is dropped.
		"admin.token":  []byte("  0123456789abcdef0123\n"),
		"short.token":  []byte("0123456789abcde\n"),
		"empty.token":  []byte(" \r\n"),
		"spaced.token": []byte("0123456789 abcdef0123\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFiles walks testdata/ok and testdata/bad. Paths in those files are
// relative, so the test reads them, then moves to a temp dir with fixtures.
func TestFiles(t *testing.T) {
	ok := readTestdata(t, "ok")
	bad := readTestdata(t, "bad")

	t.Chdir(t.TempDir())
	makeFixtures(t)

	for _, f := range ok {
		t.Run(f.name+" loads", func(t *testing.T) {
			if _, err := Parse(f.data, f.name); err != nil {
				t.Errorf("Parse(%s):\n%v", f.name, err)
			}
		})
	}

	for _, f := range bad {
		t.Run(f.name+" is refused", func(t *testing.T) {
			if len(f.wants) == 0 {
				t.Fatalf("%s does not start with # want: lines", f.name)
			}

			_, err := Parse(f.data, f.name)
			if err == nil {
				t.Fatalf("Parse(%s) = nil error, want %q", f.name, f.wants)
			}

			for _, want := range f.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Parse(%s) error does not contain %q; got:\n%v", f.name, want, err)
				}
			}

			if _, ok := errors.AsType[toml.ParseError](err); ok {
				return // a syntax error spans several lines
			}

			// One line per problem, each naming the file; the file lists them all.
			lines := strings.Split(err.Error(), "\n")
			for _, line := range lines {
				if !strings.HasPrefix(line, f.name+": ") {
					t.Errorf("line %q does not start with the file name", line)
				}
			}
			if len(lines) != len(f.wants) {
				t.Errorf("Parse(%s) reported %d problems, the file expects %d:\n%v", f.name, len(lines), len(f.wants), err)
			}
		})
	}
}

func TestFileSetsEveryKey(t *testing.T) {
	data, err := os.ReadFile("testdata/ok/full.toml")
	if err != nil {
		t.Fatal(err)
	}

	t.Chdir(t.TempDir())
	makeFixtures(t)

	got, err := Parse(data, "full.toml")
	if err != nil {
		t.Fatal(err)
	}

	hash := testHash
	want := Config{
		Listen:             "127.0.0.1:0",
		PublicHost:         "192.0.2.10",
		PassivePorts:       []int{40000, 40000},
		ActiveMode:         false,
		IdleTimeout:        Duration{90 * time.Minute},
		MaxClients:         5,
		MaxClientsPerIP:    10,
		Banner:             "wharf ready",
		BannerFile:         "banner.txt",
		ShutdownTimeout:    Duration{0},
		ASCIIConversion:    false,
		UploadMode:         UploadDirect,
		UploadSync:         UploadSyncNever,
		DataTimeout:        Duration{30 * time.Second},
		MaxListEntries:     500,
		LoginTimeout:       Duration{10 * time.Second},
		UsersFile:          "more-users.toml",
		CreateMissing:      true,
		MaxListingMemory:   Size{64 << 20},
		UploadResumeWindow: Duration{time.Hour},
		WatchInterval:      Duration{250 * time.Millisecond},
		Log:                Log{Level: LogLevel(zapcore.DebugLevel), Format: LogJSON, TransferLog: "logs/xferlog", File: "logs/wharf.log"},
		TLS:                TLS{Mode: TLSMode(server.TLSRequired), CertFile: "cert.pem", KeyFile: "key.pem", ClearTextAccounts: true},
		Anonymous: Anonymous{
			Enabled:            false,
			Root:               "does-not-matter-when-disabled",
			UploadDir:          "/not-checked/../when-disabled",
			MaxUploadSize:      Size{3 << 29},
			LoginMessageFile:   "not-read-when-disabled.txt",
			SharesHomes:        true,
			UploadQuota:        Size{1e9},
			UploadMaxFiles:     100,
			UploadMaxDepth:     2,
			UploadBytesPerHour: Size{500 << 20},
		},
		Bandwidth: Bandwidth{
			TotalDownload:   Size{10_000_000},
			TotalUpload:     Size{1 << 20},
			SessionDownload: Size{512 << 10},
			SessionUpload:   Size{1},
		},
		Ban: Ban{
			MaxFailures: 3, Window: Duration{time.Minute}, Duration: Duration{24 * time.Hour}, IPv6Prefix: 56,
			Allow: []Network{mustNetwork(t, "192.0.2.0/24"), mustNetwork(t, "2001:db8::7/128")},
		},
		Access: AccessLists{
			Allow: []Network{mustNetwork(t, "0.0.0.0/0"), mustNetwork(t, "2001:db8::/32")},
			Deny:  []Network{mustNetwork(t, "203.0.113.9/32"), mustNetwork(t, "198.51.100.0/24")},
		},
		Admin: Admin{
			Listen: "127.0.0.1:9090", Pprof: true, TokenFile: "admin.token",
			Hosts: []string{"wharf-admin.example", "Admin.Internal."}, Token: "0123456789abcdef0123",
		},
		Storage: Storage{
			Backend: BackendS3, Endpoint: "http://127.0.0.1:9000", Region: "eu-west-3", Bucket: "wharf-files",
			Prefix: "mirror/", AccessKey: "AKIAEXAMPLE", SecretKey: "s3cr3t", PathStyle: true,
			StartupTimeout: Duration{90 * time.Second},
			UploadMemory:   Size{64 << 20}, AbandonedUploadAge: Duration{6 * time.Hour},
		},
		Listing: Listing{
			Symlinks: SymlinkMode(server.SymlinksAsTargets), Hide: []string{"*.tmp", "[Rr][Ee][Aa][Dd][Mm][Ee]*"},
			Deny: []string{".~tmp~", ".*.??????", `\*`}, MessageFile: "README.mirror", Recursive: true,
			CacheTTL: Duration{30 * time.Second},
		},
		Users: []User{
			{
				Name: "alice", Password: hash, Home: "home/alice", Access: Access(auth.ReadWrite), TLS: TLSRule(auth.TLSRequired),
				SessionDownload: &Size{2 << 20}, SessionUpload: &Size{0},
			},
			{Name: "bob", Password: hash, Home: "./home/bob/", Access: Access(auth.WriteOnly), SessionUpload: &Size{4096}, Overwrite: true},
			{Name: "carol", Password: hash, Home: "home/carol"},
			{Name: "dave", Password: hash, Home: "home/carol", file: "more-users.toml"},
		},
		Snapshots: []Snapshot{
			{Path: "/debian", Module: "debian-main", Trace: "project/trace/mirror.example.org", MaxAge: Duration{6 * time.Hour}},
		},
		HTTP:       HTTP{TLS: true},
		Hash:       Hash{Files: []string{"SHA256SUMS", "*-CHECKSUM"}, SearchUp: 3, ComputeMaxSize: Size{1 << 20}},
		Manifest:   Manifest{Enabled: false, Interval: Duration{5 * time.Minute}, MaxEntries: 5000, TimeLimit: Duration{time.Minute}},
		PublicIP:   "192.0.2.10",
		BannerText: "Welcome to the mirror.\n  220 lines are fine when indented.\n\nSyncs at :00.",
		ProxyProtocol: ProxyProtocol{
			Trusted: []Network{mustNetwork(t, "10.0.0.0/8"), mustNetwork(t, "2001:db8:1::5/128")},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse(full.toml) =\n%+v\nwant\n%+v", got, want)
	}

	for _, key := range tomlKeys(reflect.TypeFor[Config](), "") {
		if !setsKey(string(data), key, false) {
			t.Errorf("full.toml does not set %q", key)
		}
	}

	wantAccess := []auth.Access{auth.ReadWrite, auth.WriteOnly, auth.ReadOnly, auth.ReadOnly}
	for i, u := range got.Users {
		if u.AccessLevel() != wantAccess[i] {
			t.Errorf("users[%d].AccessLevel() = %v, want %v", i, u.AccessLevel(), wantAccess[i])
		}
	}

	if lo, hi := got.PassiveRange(); lo != 40000 || hi != 40000 {
		t.Errorf("PassiveRange() = %d, %d, want 40000, 40000", lo, hi)
	}
}

// mustNetwork parses a network written as a CIDR.
func mustNetwork(t *testing.T, s string) Network {
	t.Helper()

	n, err := ParseNetwork(s)
	if err != nil {
		t.Fatal(err)
	}

	return n
}

// TestExample loads config.toml.example with its anonymous root moved to a
// temp dir, checks that every key it shows is the default, and that its
// account, commented out, is refused by name once uncommented as it is.
func TestExample(t *testing.T) {
	t.Parallel()

	text, err := os.ReadFile("../config.toml.example")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	for _, sub := range []string{"pub", "home/alice"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o750); err != nil {
			t.Fatal(err)
		}
	}

	const root = `root = "./public"`
	if !strings.Contains(string(text), "\n"+root+"\n") {
		t.Fatalf("the example does not show anonymous.root's default: %s", root)
	}

	data := strings.ReplaceAll(string(text), root, fmt.Sprintf("root = %q", dir+"/pub"))
	c, err := Parse([]byte(data), "config.toml.example")
	if err != nil {
		t.Fatalf("example does not load:\n%v", err)
	}

	if len(c.Users) != 0 {
		t.Errorf("the example has live accounts: %+v", c.Users)
	}

	// Apart from the folder, the example shows the defaults.
	c.Anonymous.Root = "./public"
	if def := Default(); !reflect.DeepEqual(c, def) {
		t.Errorf("example values differ from Default():\n%+v\nwant\n%+v", c, def)
	}

	for _, key := range tomlKeys(reflect.TypeFor[Config](), "") {
		if !setsKey(string(text), key, true) {
			t.Errorf("example does not document %q", key)
		}
	}
	for _, table := range []string{"[log]", "[tls]", "[anonymous]", "[bandwidth]", "[ban]", "[admin]", "[storage]", "#[[users]]"} {
		if !strings.Contains(string(text), "\n"+table+"\n") {
			t.Errorf("example has no %s table", table)
		}
	}

	// Uncommented as it is, the account is refused: its password is the
	// placeholder, named in the message with the key and the file.
	uncommented := regexp.MustCompile(`(?m)^#(\[\[users\]\]|\w+ = )`).ReplaceAllString(data, "$1")
	uncommented = strings.ReplaceAll(uncommented, "/srv/ftp/home/alice", dir+"/home/alice")
	_, err = Parse([]byte(uncommented), "config.toml.example")
	want := `config.toml.example: users[0] "alice": password: the placeholder of the example configuration, not a hash`
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("the example's account uncommented: %v, want one problem starting %q", err, want)
	}
}

// tomlKeys lists the keys of a struct type and of the tables inside it,
// each after its table: "listen", "log.level", "users.name".
func tomlKeys(t reflect.Type, table string) []string {
	var keys []string

	for f := range t.Fields() {
		key := tomlKey(f)
		if key == "" {
			continue
		}
		if table != "" {
			key = table + "." + key
		}

		switch {
		case isTableType(f.Type):
			keys = append(keys, tomlKeys(f.Type, key)...)
		case isArrayOfTablesType(f.Type):
			keys = append(keys, tomlKeys(f.Type.Elem(), key)...)
		default:
			keys = append(keys, key)
		}
	}

	return keys
}

// setsKey reports whether the TOML text sets the dotted key (from tomlKeys)
// under its own table header, so "admin.listen" is not found in the top-level
// listen. With commented, a key shown commented out ("# key = ") counts.
func setsKey(text, dotted string, commented bool) bool {
	table, key := "", dotted
	if i := strings.LastIndex(dotted, "."); i >= 0 {
		table, key = dotted[:i], dotted[i+1:]
	}

	prefix := `^`
	if commented {
		prefix = `^(#\s*)?`
	}
	header := regexp.MustCompile(prefix + `\[\[?\s*([\w.]+)\s*\]\]?\s*$`)
	set := regexp.MustCompile(prefix + regexp.QuoteMeta(key) + `\s*=`)

	current := ""
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if m := header.FindStringSubmatch(line); m != nil {
			current = m[len(m)-1]
		} else if current == table && set.MatchString(line) {
			return true
		}
	}

	return false
}

// Validation reads banner_file and login_message_file, with LF line ends and
// without trailing newlines, and reads them again each time; Greeting prefers
// banner_file's text to banner.
func TestMessageFiles(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	banner := filepath.Join(dir, "banner.txt")
	login := filepath.Join(dir, "login.txt")
	writeTOML(t, banner, "Welcome to the mirror.\r\nSyncs at :00.\r\n")
	writeTOML(t, login, "Be nice.\n\n")

	c := Default()
	c.Anonymous.Root = dir
	if got := c.Greeting(); got != "wharf ready" {
		t.Errorf("Greeting() without banner_file = %q, want banner's", got)
	}

	c.BannerFile, c.Anonymous.LoginMessageFile = banner, login
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Greeting(), "Welcome to the mirror.\nSyncs at :00."; got != want {
		t.Errorf("Greeting() = %q, want %q", got, want)
	}
	if got, want := c.Anonymous.LoginMessageText, "Be nice."; got != want {
		t.Errorf("LoginMessageText = %q, want %q", got, want)
	}

	writeTOML(t, banner, "Moved to ftp2.example.org.\n")
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Greeting(), "Moved to ftp2.example.org."; got != want {
		t.Errorf("Greeting() after the file changed = %q, want %q", got, want)
	}

	writeTOML(t, banner, "Welcome\n220 ready\n")
	err := c.Validate()
	if want := fmt.Sprintf("banner_file %q: line 2: %q starts like a reply code", banner, "220 ready"); err == nil ||
		!strings.HasPrefix(err.Error(), want) {
		t.Errorf("Validate() with a reply line = %v, want it to start with %q", err, want)
	}
	if c.BannerText != "" {
		t.Errorf("BannerText = %q after a refused file, want none", c.BannerText)
	}
}

func TestDefaultServesPublic(t *testing.T) {
	t.Chdir(t.TempDir())

	c := Default()
	err := c.Validate()
	if want := `anonymous.root "./public": no such directory`; err == nil || err.Error() != want {
		t.Fatalf("Default().Validate() without ./public = %v, want %q", err, want)
	}

	if err := os.Mkdir("public", 0o750); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() with ./public = %v", err)
	}

	if c.Listen != "0.0.0.0:2121" || !c.Anonymous.Enabled || len(c.Users) != 0 {
		t.Errorf("Default() = %+v, want anonymous only on 0.0.0.0:2121", c)
	}
	if lo, hi := c.PassiveRange(); lo != 50000 || hi != 50100 {
		t.Errorf("PassiveRange() = %d, %d, want 50000, 50100", lo, hi)
	}
}

func TestValidateNamesKeysWithoutFile(t *testing.T) {
	t.Parallel()

	c := Default()
	c.Anonymous.Root = t.TempDir()
	c.MaxClients = 0
	c.Users = []User{{Name: "ftp", Password: "x", Home: c.Anonymous.Root, TLS: TLSRule(auth.TLSOptional + 1)}}

	err := c.Validate()
	want := "max_clients: must be at least 1, got 0\n" +
		`users[0] "ftp": name is reserved for anonymous logins (see [anonymous])` + "\n" +
		`users[0] "ftp": password: not a bcrypt hash (plain-text passwords are refused; use wharf hash-password)` + "\n" +
		`users[0] "ftp": tls: TLSRule(3) is not a TLS rule (required or optional)`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestPublicHost(t *testing.T) {
	t.Parallel()

	tests := []struct {
		host, wantIP, wantErr string
	}{
		{host: "", wantIP: ""},
		{host: "203.0.113.7", wantIP: "203.0.113.7"},
		{host: "localhost", wantIP: "127.0.0.1"},
		{host: "::1", wantErr: `public_host: "::1" is an IPv6 address, but PASV replies carry only IPv4`},
		{host: "::ffff:192.0.2.1", wantErr: "is an IPv6 address"},
	}
	for _, tt := range tests {
		t.Run(tt.host+" resolves to "+tt.wantIP, func(t *testing.T) {
			t.Parallel()

			c := Default()
			c.Anonymous.Root = t.TempDir()
			c.PublicHost = tt.host

			err := c.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Validate() = %v, want %q", err, tt.wantErr)
				}

				return
			}

			if err != nil {
				t.Fatal(err)
			}
			if c.PublicIP != tt.wantIP {
				t.Errorf("PublicIP = %q, want %q", c.PublicIP, tt.wantIP)
			}
		})
	}
}

// fakeResolver answers every lookup with the same addresses.
type fakeResolver []netip.Addr

func (r fakeResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	if len(r) == 0 {
		return nil, errors.New("lookup: no such host")
	}

	return r, nil
}

func TestPublicHostWithOnlyIPv6IsRefused(t *testing.T) {
	t.Parallel()

	c := Default()
	c.Anonymous.Root = t.TempDir()
	c.PublicHost = "v6only.example"

	p := &problems{}
	c.validate(p, fakeResolver{netip.MustParseAddr("2001:db8::1")})

	want := `public_host: "v6only.example" has no IPv4 address, and PASV replies carry only IPv4`
	if err := p.err(); err == nil || err.Error() != want {
		t.Errorf("validate() = %v, want %q", err, want)
	}
}

func TestSyntaxErrorShowsPosition(t *testing.T) {
	t.Parallel()

	_, err := Parse([]byte("listen = \"0.0.0.0:21\"\nbanner = \n"), "wharf.toml")

	pe, ok := errors.AsType[toml.ParseError](err)
	if !ok {
		t.Fatalf("Parse() = %v, want a toml.ParseError", err)
	}
	if pe.Position.Line != 2 {
		t.Errorf("error at line %d, want 2", pe.Position.Line)
	}
	if !strings.HasPrefix(err.Error(), "wharf.toml: toml: error: ") || !strings.Contains(err.Error(), "At line 2") {
		t.Errorf("Parse() error =\n%v\nwant the file name and the position", err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()

	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing file) = %v, want fs.ErrNotExist", err)
	}

	good := filepath.Join(dir, "good.toml")
	writeTOML(t, good, "max_clients = 3\n[anonymous]\nroot = %q\n", dir)
	c, err := Load(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxClients != 3 || c.MaxClientsPerIP != 16 {
		t.Errorf("Load() = %+v, want max_clients 3 and the default max_clients_per_ip 16", c)
	}

	// Problems name the file as given, and wrap their causes.
	bad := filepath.Join(dir, "bad.toml")
	writeTOML(t, bad, "[anonymous]\nroot = %q\n[tls]\nmode = \"explicit\"\ncert_file = %q\nkey_file = %q\n",
		dir, filepath.Join(dir, "no-cert.pem"), filepath.Join(dir, "no-key.pem"))
	_, err = Load(bad)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(bad) = %v, want it to wrap fs.ErrNotExist", err)
	}
	if want := bad + ": tls.cert_file: open " + filepath.Join(dir, "no-cert.pem"); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load(bad) =\n%v\nwant it to start with %q", err, want)
	}
}

func writeTOML(t *testing.T, path, format string, args ...any) {
	t.Helper()

	if err := os.WriteFile(path, fmt.Appendf(nil, format, args...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDurationText(t *testing.T) {
	t.Parallel()

	var d Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d.Duration != 90*time.Minute {
		t.Fatalf("UnmarshalText(1h30m) = %v, %v", d, err)
	}

	text, err := d.MarshalText()
	if err != nil || string(text) != "1h30m0s" {
		t.Errorf("MarshalText() = %q, %v, want 1h30m0s", text, err)
	}

	for _, bad := range []string{"900", "", "fast", "15 minutes"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) = nil error", bad)
		}
	}
}

// FuzzParse checks that no input makes Parse panic, and that whatever it
// accepts passes validation again. It never looks up host names.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.toml")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, "../config.toml.example")
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[anonymous]\nroot = \".\"\n"))
	f.Add([]byte("idle_timeout = 1e400\nusers = [[1], {}]\n[[log]]\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data, "fuzz.toml", fakeResolver{})
		if err != nil {
			return
		}

		p := &problems{}
		c.validate(p, fakeResolver{})
		if err := p.err(); err != nil {
			t.Errorf("accepted config fails validation again: %v", err)
		}
		if lo, hi := c.PassiveRange(); lo < 1 || hi > 65535 || lo > hi {
			t.Errorf("accepted passive range %d-%d", lo, hi)
		}
	})
}
