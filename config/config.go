package config

import (
	"fmt"
	"net"
	"os"
	"time"

	"go.uber.org/zap/zapcore"

	"wharf/auth"
	"wharf/server"
	"wharf/vfs"
)

// Config is the whole configuration file. The comments give each key's
// default; config.toml.example at the repository root documents them for
// operators.
type Config struct {
	Listen          string     `toml:"listen"`             // "0.0.0.0:2121"
	PublicHost      string     `toml:"public_host"`        // ""; an IPv4 address or a host name resolving to one
	PassivePorts    []int      `toml:"passive_ports"`      // [50000, 50100]: exactly two ports, lo <= hi
	ActiveMode      bool       `toml:"active_mode"`        // true
	IdleTimeout     Duration   `toml:"idle_timeout"`       // 15m, > 0
	MaxClients      int        `toml:"max_clients"`        // 1000, >= 1
	MaxClientsPerIP int        `toml:"max_clients_per_ip"` // 16, >= 1
	Banner          string     `toml:"banner"`             // "wharf ready"; one line
	BannerFile      string     `toml:"banner_file"`        // "": a text file whose lines are the 220 greeting, instead of banner
	ShutdownTimeout Duration   `toml:"shutdown_timeout"`   // 30s, >= 0
	ASCIIConversion bool       `toml:"ascii_conversion"`   // true
	UploadMode      UploadMode `toml:"upload_mode"`        // "atomic": atomic | direct
	UploadSync      UploadSync `toml:"upload_sync"`        // "always": always | never; data and name on disk before the 226
	DataTimeout     Duration   `toml:"data_timeout"`       // 5m, > 0: a transfer that moves no byte for this long is closed
	MaxListEntries  int        `toml:"max_list_entries"`   // 100000, >= 1: entries one LIST, NLST, MLSD or STAT returns
	LoginTimeout    Duration   `toml:"login_timeout"`      // 60s, > 0: a session not logged in by then is closed
	UsersFile       string     `toml:"users_file"`         // "": a TOML file of [[users]] tables, appended to Users

	// CreateMissing makes wharf create, at start and on every reload, the
	// anonymous root, its upload_dir and users' homes that do not exist
	// (see Folders for their modes); Validate then accepts them missing.
	CreateMissing bool `toml:"create_missing"` // false

	// MaxListingMemory bounds the memory held by listings in flight, all
	// sessions together; a listing that would pass it waits or is refused.
	MaxListingMemory Size `toml:"max_listing_memory"` // 256MiB; 0 = no bound
	// UploadResumeWindow is how long an account's interrupted upload stays
	// resumable, hidden and bound to that account and name.
	UploadResumeWindow Duration `toml:"upload_resume_window"` // 24h, >= 0; 0 turns resuming off
	// WatchInterval is how often wharf looks at the files a reload reads
	// (see Files) and reloads, as on SIGHUP, when one has changed.
	WatchInterval Duration `toml:"watch_interval"` // 5s; 0 turns watching off, else >= 100ms

	Log       Log         `toml:"log"`
	TLS       TLS         `toml:"tls"`
	Anonymous Anonymous   `toml:"anonymous"`
	Bandwidth Bandwidth   `toml:"bandwidth"`
	Ban       Ban         `toml:"ban"`
	Access    AccessLists `toml:"access"`
	Admin     Admin       `toml:"admin"`
	Storage   Storage     `toml:"storage"`
	Listing   Listing     `toml:"listing"`
	Users     []User      `toml:"users"` // the file's [[users]], then users_file's
	HTTP      HTTP        `toml:"http"`

	// PublicIP is public_host resolved to an IPv4 address by Validate
	// ("" when public_host is empty). It is not a key of the file.
	PublicIP string `toml:"-"`

	// BannerText is the text of banner_file as Validate read and checked it,
	// with its line ends made "\n" ("" when banner_file is empty). It is not
	// a key of the file; see Greeting.
	BannerText string `toml:"-"`

	ProxyProtocol ProxyProtocol `toml:"proxy_protocol"`

	// Snapshots are the folders of the anonymous tree that a mirror's sync
	// flips between copies (snapshots.go).
	Snapshots []Snapshot `toml:"snapshots"` // []

	Hash     Hash     `toml:"hash"`     // HASH and the X* checksum commands (hash.go)
	Manifest Manifest `toml:"manifest"` // /ls-lR.gz and /manifest.json for crawlers (manifest.go)
}

// HTTP is the [http] table: the anonymous tree served read-only over HTTP
// or HTTPS, beside FTP.
type HTTP struct {
	Listen string `toml:"listen"` // "": off; else host:port, not the FTP or admin listen address; needs anonymous.enabled
	TLS    bool   `toml:"tls"`    // false: true serves HTTPS with tls.cert_file and tls.key_file, whatever tls.mode
}

// Log is the [log] table.
type Log struct {
	Level       LogLevel  `toml:"level"`        // "info": debug | info | warn | error
	Format      LogFormat `toml:"format"`       // "console": console | json
	TransferLog string    `toml:"transfer_log"` // "": path of an xferlog file, in an existing folder
	File        string    `toml:"file"`         // "": standard output; else a file in an existing folder, reopened on SIGHUP/SIGUSR1
}

// TLS is the [tls] table.
type TLS struct {
	Mode     TLSMode `toml:"mode"`      // "off": off | explicit | required | implicit
	CertFile string  `toml:"cert_file"` // PEM certificate chain; required unless mode is off
	KeyFile  string  `toml:"key_file"`  // PEM private key; required unless mode is off

	// ClearTextAccounts lets [[users]] log in and transfer without TLS in
	// explicit and implicit mode, where by default they must use it. A user's
	// own tls key overrides it. Legal but without effect in modes off and required.
	ClearTextAccounts bool `toml:"clear_text_accounts"` // false

	// RequireSessionReuse refuses a TLS data connection that does not resume
	// the control connection's TLS session, so a stranger behind the same
	// address can't take a transfer (vsftpd's require_ssl_reuse). Python's
	// ftplib and rclone don't resume; false lets them in.
	RequireSessionReuse bool `toml:"require_session_reuse"` // true
}

// Anonymous is the [anonymous] table.
type Anonymous struct {
	Enabled bool   `toml:"enabled"` // true
	Root    string `toml:"root"`    // "./public"; an existing directory when enabled

	// UploadDir is a folder under Root, written relative to it ("incoming"),
	// where anonymous users may upload new files and make folders. "" allows
	// no uploads. When enabled it must exist, without ".." or a leading "/".
	UploadDir     string `toml:"upload_dir"`      // ""
	MaxUploadSize Size   `toml:"max_upload_size"` // 100MiB; 0 = unlimited

	// LoginMessageFile is a text file whose lines are the 230 reply to an
	// anonymous login, checked like banner_file. "" keeps wharf's own text.
	LoginMessageFile string `toml:"login_message_file"` // ""

	// WorldReadableOnly hides from anonymous sessions what others may not
	// read on disk. S3 objects have no mode bits: with the s3 backend it
	// has no effect, whatever its value.
	WorldReadableOnly bool `toml:"world_readable_only"` // true

	// SharesHomes allows the home of a read-write or write-only account
	// inside Root (or Root itself), where anonymous users could read what
	// the account uploads, or below UploadDir, where strangers' uploads
	// would land in it. Without it Validate refuses such a home.
	SharesHomes bool `toml:"shares_homes"` // false

	// The drop box's limits, used only with UploadDir set; 0 is no limit.
	// UploadQuota and UploadMaxFiles bound UploadDir as a whole (bytes;
	// files and folders), UploadMaxDepth the nesting of folders below it.
	// UploadRate (files per minute) and UploadBytesPerHour bound each client
	// address.
	UploadQuota        Size `toml:"upload_quota"`          // 10GiB
	UploadMaxFiles     int  `toml:"upload_max_files"`      // 10000, >= 0
	UploadMaxDepth     int  `toml:"upload_max_depth"`      // 8, >= 0
	UploadRate         int  `toml:"upload_rate"`           // 60, >= 0
	UploadBytesPerHour Size `toml:"upload_bytes_per_hour"` // 2GiB

	// LoginMessageText is the text of login_message_file as Validate read
	// and checked it ("" when none). It is not a key of the file.
	LoginMessageText string `toml:"-"`
}

// Bandwidth is the [bandwidth] table: limits in bytes per second, 0 for
// none. The total limits are shared by all sessions; the session limits apply
// to each session, unless a user sets its own.
type Bandwidth struct {
	TotalDownload   Size `toml:"total_download"`   // 0
	TotalUpload     Size `toml:"total_upload"`     // 0
	SessionDownload Size `toml:"session_download"` // 0
	SessionUpload   Size `toml:"session_upload"`   // 0
}

// Ban is the [ban] table: an IP address with MaxFailures failed logins within
// Window is refused for Duration. IPv6 addresses count by their first
// IPv6Prefix bits, for bans and max_clients_per_ip alike: one IPv6 host
// usually holds a whole /64.
type Ban struct {
	MaxFailures int       `toml:"max_failures"` // 5, >= 0; 0 turns banning off
	Window      Duration  `toml:"window"`       // 10m, > 0 when max_failures > 0
	Duration    Duration  `toml:"duration"`     // 1h, > 0 when max_failures > 0
	IPv6Prefix  int       `toml:"ipv6_prefix"`  // 64: 1 to 128
	Allow       []Network `toml:"allow"`        // []: networks never banned
}

// AccessLists is the [access] table: client networks refused (421) before
// the greeting. Deny wins; with Allow not empty, every client outside it is
// refused too.
type AccessLists struct {
	Allow []Network `toml:"allow"` // []: everyone
	Deny  []Network `toml:"deny"`  // []: no one
}

// ProxyProtocol is the [proxy_protocol] table: the load balancers whose
// connections start with a PROXY protocol header (v1 or v2) naming the
// client, whose address then stands for the connection everywhere.
type ProxyProtocol struct {
	Trusted []Network `toml:"trusted"` // []: no balancer; a header from anywhere is refused
}

// Admin is the [admin] table: the HTTP listener for /metrics, /healthz,
// /readyz, /sessions and /.
type Admin struct {
	Listen string `toml:"listen"` // "": off; else host:port, not the FTP listen address
	Pprof  bool   `toml:"pprof"`  // false: serve net/http/pprof on the admin listener

	// TokenFile holds the bearer token every request but /healthz and
	// /readyz must send; read only when Listen is set.
	TokenFile string `toml:"token_file"` // "": no token
	// Hosts are the names a request's Host header may carry besides an IP
	// address (or localhost): a DNS-rebinding page names its own host.
	Hosts []string `toml:"hosts"` // []

	// Token is the content of TokenFile, trimmed, as Validate read and
	// checked it ("" when none). It is not a key of the file.
	Token string `toml:"-"`
}

// Storage is the [storage] table: where the files served live. With "disk",
// anonymous.root and each user's home are folders; with "s3", they are key
// prefixes below Prefix in an S3-compatible bucket, and need not exist.
type Storage struct {
	Backend  Backend `toml:"backend"`  // "disk": disk | s3
	Endpoint string  `toml:"endpoint"` // "": AWS; else an http or https URL such as "http://127.0.0.1:9000"
	Region   string  `toml:"region"`   // "us-east-1"; "": ask the store
	Bucket   string  `toml:"bucket"`   // "": required with s3
	Prefix   string  `toml:"prefix"`   // "": key prefix of everything wharf serves
	// AccessKey and SecretKey may also come from the files named by
	// WHARF_STORAGE_ACCESS_KEY_FILE and WHARF_STORAGE_SECRET_KEY_FILE. Both
	// empty: cmd/wharf uses AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	AccessKey string `toml:"access_key"` // ""
	SecretKey string `toml:"secret_key"` // ""
	PathStyle bool   `toml:"path_style"` // false: bucket in the host name; true: in the path (MinIO, Ceph)
	// StartupTimeout is how long wharf, started while the store does not
	// answer, serves and waits for it (not ready meanwhile) before it exits.
	StartupTimeout Duration `toml:"startup_timeout"` // 2m, >= 0; 0 exits at once
	// UploadMemory bounds the part buffers of all S3 uploads together; 0 is
	// no bound. AbandonedUploadAge is when an incomplete multipart upload
	// that no session runs is aborted; 0 never.
	UploadMemory       Size     `toml:"upload_memory"`        // "128MiB"; 0 or at least 16MiB
	AbandonedUploadAge Duration `toml:"abandoned_upload_age"` // "24h"; 0 or at least 1s
}

// Listing is the [listing] table: how listings show the tree, and which
// names are hidden or refused. Patterns use Go's path.Match syntax and match
// one name (a path element), never a path.
type Listing struct {
	Symlinks    SymlinkMode `toml:"symlinks"`     // "links": links | targets
	Hide        []string    `toml:"hide"`         // []: not listed, still served by exact name
	Deny        []string    `toml:"deny"`         // rsync's temporary names (DefaultDeny): neither listed, served nor uploaded
	MessageFile string      `toml:"message_file"` // ".message": a name, not a path; "" shows no message on CWD
	Recursive   bool        `toml:"recursive"`    // false: true allows LIST -R
	CacheTTL    Duration    `toml:"cache_ttl"`    // "2s": how long a listing is served again; "0s" keeps none
}

// DefaultDeny returns listing.deny's default, rsync's temporary names
// (vfs.DefaultDeny): the ".~tmp~" folder of rsync --delay-updates, and the
// ".name.XXXXXX" file rsync writes before renaming it to name.
func DefaultDeny() []string {
	return vfs.DefaultDeny()
}

// DefaultUploadMemory is storage.upload_memory's default: the part buffers
// of 8 uploads at full speed (16 MiB parts), or of 25 at once with 5 MiB
// parts, while the whole process stays within a 256 MiB container.
const DefaultUploadMemory = 128 << 20

// S3 reports whether the files live in an S3-compatible bucket.
func (s Storage) S3() bool { return s.Backend == BackendS3 }

// User is one [[users]] entry: a named account with a bcrypt password hash.
type User struct {
	Name     string `toml:"name"`     // required, unique, not "anonymous" or "ftp" in any case
	Password string `toml:"password"` // bcrypt hash ($2a$, $2b$, $2y$); plain text is refused
	Home     string `toml:"home"`     // required, an existing directory
	Access   Access `toml:"access"`   // "read-only" when empty: read-only | read-write | write-only

	// TLS is whether the account must use TLS when tls.mode is explicit or
	// implicit: "required", "optional", or "" (the key absent) to follow [tls]
	// clear_text_accounts.
	TLS TLSRule `toml:"tls"`

	// Bytes per second for each of the user's sessions, 0 for none. Nil
	// (the key absent or "") uses [bandwidth] session_download/session_upload.
	SessionDownload *Size `toml:"session_download"`
	SessionUpload   *Size `toml:"session_upload"`

	// Overwrite lets a write-only account replace or append to files that
	// exist; without it write-only means create-only.
	Overwrite bool `toml:"overwrite"` // false

	// file is the users_file the entry came from; "" for the main file.
	// Messages about the entry name that file.
	file string
}

// Default returns how wharf runs without a configuration file: it serves
// ./public anonymously and read-only on 0.0.0.0:2121. Load and Parse decode
// a file over it, so keys the file leaves out keep these values.
func Default() Config {
	return Config{
		Listen:          "0.0.0.0:2121",
		PassivePorts:    []int{50000, 50100},
		ActiveMode:      true,
		IdleTimeout:     Duration{15 * time.Minute},
		MaxClients:      1000,
		MaxClientsPerIP: 16,
		Banner:          "wharf ready",
		ShutdownTimeout: Duration{30 * time.Second},
		ASCIIConversion: true,
		UploadMode:      UploadAtomic,
		UploadSync:      UploadSyncAlways,
		DataTimeout:     Duration{5 * time.Minute},
		MaxListEntries:  100000,
		LoginTimeout:    Duration{time.Minute},
		// The lists below are empty, not nil, so that check-config -print shows them.
		MaxListingMemory:   Size{256 << 20},
		UploadResumeWindow: Duration{24 * time.Hour},
		WatchInterval:      Duration{5 * time.Second},
		Log:                Log{Level: LogLevel(zapcore.InfoLevel), Format: LogConsole},
		TLS:                TLS{Mode: TLSMode(server.TLSOff), RequireSessionReuse: true},
		Anonymous: Anonymous{
			Enabled: true, Root: "./public", MaxUploadSize: Size{100 << 20}, WorldReadableOnly: true,
			UploadQuota: Size{10 << 30}, UploadMaxFiles: 10000, UploadMaxDepth: 8, UploadRate: 60,
			UploadBytesPerHour: Size{2 << 30},
		},
		Ban: Ban{
			MaxFailures: 5, Window: Duration{10 * time.Minute}, Duration: Duration{time.Hour},
			IPv6Prefix: 64, Allow: []Network{},
		},
		Access: AccessLists{Allow: []Network{}, Deny: []Network{}},
		Admin:  Admin{Hosts: []string{}},
		Storage: Storage{
			Backend: BackendDisk, Region: "us-east-1", StartupTimeout: Duration{2 * time.Minute},
			UploadMemory: Size{DefaultUploadMemory}, AbandonedUploadAge: Duration{24 * time.Hour},
		},
		Listing: Listing{
			Symlinks: SymlinkMode(server.SymlinksAsLinks), Hide: []string{}, Deny: DefaultDeny(),
			MessageFile: ".message", CacheTTL: Duration{server.DefaultListingCacheTTL},
		},
		ProxyProtocol: ProxyProtocol{Trusted: []Network{}},
		Hash:          DefaultHash(),
		Manifest:      DefaultManifest(),
	}
}

// Load reads the file at path and decodes it like Parse, naming it by path
// in messages. It reads no environment variable; see [Sources] for that.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}

	return Parse(data, path)
}

// Parse decodes data over Default, refuses keys the schema doesn't know and
// values of the wrong type, appends the accounts of users_file, then runs
// Validate. Every problem is returned, joined with errors.Join, each starting
// with name and the key. A TOML syntax error is returned alone, since nothing
// after it can be read.
func Parse(data []byte, name string) (Config, error) {
	return parse(data, name, net.DefaultResolver)
}

func parse(data []byte, name string, r resolver) (Config, error) {
	c, _, err := assemble(input{data: data, file: name}, r, true)

	return c, err
}

// input is what assemble builds a configuration from, besides Default.
type input struct {
	data  []byte            // the TOML file; nil for none
	file  string            // its name in messages; "" for none
	env   map[string]string // WHARF_* variables by name
	flags map[string]string // key -> value from the command line
}

// assemble layers in over Default: the file, then the environment, then
// the flags. With validate it appends the accounts of users_file and checks
// the result. It returns the unknown WHARF_* variables, even with an error.
func assemble(in input, r resolver, validate bool) (Config, []string, error) {
	c := Default()
	p := &problems{file: in.file}

	if err := decode(in.data, &c, p); err != nil {
		return Config{}, nil, err
	}

	unknown := applyEnv(&c, in.env, p)
	applyFlags(&c, in.flags, p)

	if validate {
		if c.UsersFile != "" {
			if err := readUsersFile(&c, p); err != nil {
				return Config{}, unknown, err
			}
		}

		c.validate(p, r)
	}

	if err := p.err(); err != nil {
		return Config{}, unknown, err
	}

	return c, unknown, nil
}

// Greeting returns the text of the 220 greeting: banner_file's, as Validate
// read it, when banner_file is set, else banner.
func (c Config) Greeting() string {
	if c.BannerFile != "" {
		return c.BannerText
	}

	return c.Banner
}

// PassiveRange returns the first and last port of passive_ports.
// It returns 0, 0 if passive_ports does not hold two ports, which Validate refuses.
func (c Config) PassiveRange() (lo, hi int) {
	if len(c.PassivePorts) != 2 {
		return 0, 0
	}

	return c.PassivePorts[0], c.PassivePorts[1]
}

// AccessLevel returns the user's access level; an empty access is read-only.
func (u User) AccessLevel() auth.Access { return auth.Access(u.Access) }

// DownloadLimit returns the bytes per second allowed to each of the user's
// sessions for downloads, 0 for no limit: the user's session_download, or
// else [bandwidth] session_download.
func (u User) DownloadLimit(c Config) int64 {
	if u.SessionDownload != nil {
		return u.SessionDownload.Bytes
	}

	return c.Bandwidth.SessionDownload.Bytes
}

// UploadLimit returns the bytes per second allowed to each of the user's
// sessions for uploads, 0 for no limit: the user's session_upload, or else
// [bandwidth] session_upload.
func (u User) UploadLimit(c Config) int64 {
	if u.SessionUpload != nil {
		return u.SessionUpload.Bytes
	}

	return c.Bandwidth.SessionUpload.Bytes
}

// Duration is a duration written in the file as a string such as "15m" or
// "1h30m" (see time.ParseDuration). A bare number is refused: with a plain
// time.Duration, idle_timeout = 900 would silently mean 900 nanoseconds.
type Duration struct{ time.Duration }

// UnmarshalText parses a duration string such as "15m".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write it like \"15m\", \"30s\" or \"1h30m\")", text)
	}

	d.Duration = v

	return nil
}

// MarshalText writes the duration the way UnmarshalText reads it.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.String()), nil
}
