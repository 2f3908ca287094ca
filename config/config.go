package config

import (
	"fmt"
	"net"
	"os"
	"time"

	"wharf/auth"
)

// Config is the whole configuration file. The comments give each key's
// default; config.toml.example at the repository root documents them for
// operators.
type Config struct {
	Listen          string   `toml:"listen"`             // "0.0.0.0:2121"
	PublicHost      string   `toml:"public_host"`        // ""; an IPv4 address or a host name resolving to one
	PassivePorts    []int    `toml:"passive_ports"`      // [50000, 50100]: exactly two ports, lo <= hi
	ActiveMode      bool     `toml:"active_mode"`        // true
	IdleTimeout     Duration `toml:"idle_timeout"`       // 15m, > 0
	MaxClients      int      `toml:"max_clients"`        // 1000, >= 1
	MaxClientsPerIP int      `toml:"max_clients_per_ip"` // 16, >= 1
	Banner          string   `toml:"banner"`             // "wharf ready"; one line
	ShutdownTimeout Duration `toml:"shutdown_timeout"`   // 30s, >= 0
	ASCIIConversion bool     `toml:"ascii_conversion"`   // true
	UploadMode      string   `toml:"upload_mode"`        // "atomic": atomic | direct

	Log       Log       `toml:"log"`
	TLS       TLS       `toml:"tls"`
	Anonymous Anonymous `toml:"anonymous"`
	Users     []User    `toml:"users"`

	// PublicIP is public_host resolved to an IPv4 address by Validate
	// ("" when public_host is empty). It is not a key of the file.
	PublicIP string `toml:"-"`
}

// Log is the [log] table.
type Log struct {
	Level       string `toml:"level"`        // "info": debug | info | warn | error
	Format      string `toml:"format"`       // "console": console | json
	TransferLog string `toml:"transfer_log"` // "": path of an xferlog file, in an existing folder
}

// TLS is the [tls] table.
type TLS struct {
	Mode     string `toml:"mode"`      // "off": off | explicit | required | implicit
	CertFile string `toml:"cert_file"` // PEM certificate chain; required unless mode is off
	KeyFile  string `toml:"key_file"`  // PEM private key; required unless mode is off
}

// Anonymous is the [anonymous] table.
type Anonymous struct {
	Enabled bool   `toml:"enabled"` // true
	Root    string `toml:"root"`    // "./public"; an existing directory when enabled
}

// User is one [[users]] entry: a named account with a bcrypt password hash.
type User struct {
	Name     string `toml:"name"`     // required, unique, not "anonymous" or "ftp" in any case
	Password string `toml:"password"` // bcrypt hash ($2a$, $2b$, $2y$); plain text is refused
	Home     string `toml:"home"`     // required, an existing directory
	Access   string `toml:"access"`   // "read-only" when empty: read-only | read-write | write-only
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
		UploadMode:      "atomic",
		Log:             Log{Level: "info", Format: "console"},
		TLS:             TLS{Mode: "off"},
		Anonymous:       Anonymous{Enabled: true, Root: "./public"},
	}
}

// Load reads the file at path and decodes it like Parse, naming it by path
// in messages.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}

	return Parse(data, path)
}

// Parse decodes data over Default, refuses keys the schema doesn't know and
// values of the wrong type, then runs Validate. Every problem is returned,
// joined with errors.Join, each starting with name and the key. A TOML syntax
// error is returned alone, since nothing after it can be read.
func Parse(data []byte, name string) (Config, error) {
	return parse(data, name, net.DefaultResolver)
}

func parse(data []byte, name string, r resolver) (Config, error) {
	c := Default()
	p := &problems{file: name}

	if err := decode(data, &c, p); err != nil {
		return Config{}, err
	}

	c.validate(p, r)

	if err := p.err(); err != nil {
		return Config{}, err
	}

	return c, nil
}

// PassiveRange returns the first and last port of passive_ports.
// It returns 0, 0 if passive_ports does not hold two ports, which Validate refuses.
func (c Config) PassiveRange() (lo, hi int) {
	if len(c.PassivePorts) != 2 {
		return 0, 0
	}

	return c.PassivePorts[0], c.PassivePorts[1]
}

// AccessLevel returns the user's parsed access level. An empty access is
// read-only; so is an invalid one, which Validate refuses.
func (u User) AccessLevel() auth.Access {
	a, err := auth.ParseAccess(u.Access)
	if err != nil {
		return auth.ReadOnly
	}

	return a
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
