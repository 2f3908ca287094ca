package config

import (
	"encoding"
	"fmt"
	"maps"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment variables. Every scalar key has one: WHARF_ and the key's
// path in capitals with "_" for ".", such as WHARF_LOG_LEVEL for log.level
// (see envName). The two lists count as scalars: passive_ports is written
// "50000-50100", listing.hide and listing.deny "a,b" (see splitList).
// [[users]] is not a scalar: users_file is the way to give accounts without
// the main file.
const (
	envPrefix = "WHARF_"
	// envConfig names the configuration file when -config is absent.
	envConfig = "WHARF_CONFIG"
	// fileSuffix, after the variable of a secret key, names a file holding
	// the secret, as Docker and Kubernetes mount them.
	fileSuffix = "_FILE"
)

// isSecret reports whether key may also be read from a file named by its
// variable + "_FILE". Keys that end in _file themselves (tls.cert_file) are
// paths already.
func isSecret(key string) bool {
	return key == "storage.access_key" || key == "storage.secret_key"
}

// Sources are what a configuration is made of besides Default, from the
// weakest to the strongest: the file, the environment, the command-line flags.
// Keep the value to load the configuration again (SIGHUP) the same way.
type Sources struct {
	// File is the -config path. "" uses WHARF_CONFIG from Env, or no file.
	File string
	// Env holds "NAME=value" entries, as os.Environ returns them. Only the
	// WHARF_* ones are read; the package never reads the process environment.
	Env []string
	// Flags maps a scalar key ("listen", "public_host", "log.level") to a
	// value given on the command line.
	Flags map[string]string
}

// LoadEnv is Sources{File: path, Env: env}.Load().
func LoadEnv(path string, env []string) (Config, []string, error) {
	return Sources{File: path, Env: env}.Load()
}

// Path returns the configuration file that Load reads: File, else
// WHARF_CONFIG, else "" for none.
func (s Sources) Path() string {
	if s.File != "" {
		return s.File
	}

	return environ(s.Env)[envConfig]
}

// Load builds the configuration: Default, then the file (see Parse), then
// every WHARF_* variable that names a scalar key, then Flags, then the
// accounts of users_file, and validates the result. A bad value is reported
// against the variable or flag that set it, such as
// `WHARF_IDLE_TIMEOUT: "15": want a duration such as "15m"`.
//
// It also returns, sorted, the WHARF_* variables that name no key: other
// tools use the prefix too, so they are for a warning, not an error.
func (s Sources) Load() (Config, []string, error) {
	return s.load(net.DefaultResolver, true)
}

// Merge builds the configuration like Load but does not validate it: no
// file is checked, users_file is not read and no host name is looked up.
// Only decoding problems (a syntax error, an unknown key, a value of the
// wrong type) are errors. A health probe uses it to find the listen address
// and the TLS mode, and must not fail because a folder or a name server is
// briefly unavailable.
func (s Sources) Merge() (Config, []string, error) {
	return s.load(nil, false)
}

func (s Sources) load(r resolver, validate bool) (Config, []string, error) {
	env := environ(s.Env)
	in := input{file: s.Path(), env: env, flags: s.Flags}

	if in.file != "" {
		data, err := os.ReadFile(in.file)
		if err != nil {
			if s.File == "" {
				return Config{}, nil, fmt.Errorf("%s: read config: %w", envConfig, err)
			}

			return Config{}, nil, fmt.Errorf("read config: %w", err)
		}

		in.data = data
	}

	return assemble(in, r, validate)
}

// environ turns "NAME=value" entries into a map; a later entry wins.
func environ(env []string) map[string]string {
	m := make(map[string]string)
	for _, kv := range env {
		if name, value, ok := strings.Cut(kv, "="); ok {
			m[name] = value
		}
	}

	return m
}

// envName is the variable that sets key: "log.level" -> "WHARF_LOG_LEVEL".
func envName(key string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// flagName is the command-line flag that sets key: "log.level" -> "-log-level".
func flagName(key string) string {
	return "-" + strings.NewReplacer(".", "-", "_", "-").Replace(key)
}

// setting is a scalar key and its field in the Config being built.
type setting struct {
	key   string        // "log.level"
	field reflect.Value // settable
}

// settings lists the scalar keys of c by variable name, derived from the
// toml tags so that no key is forgotten: every key but the tables and the
// [[users]] array.
func settings(c *Config) map[string]setting {
	m := make(map[string]setting)

	var walk func(v reflect.Value, table string)
	walk = func(v reflect.Value, table string) {
		for i := range v.NumField() {
			key := tomlKey(v.Type().Field(i))
			if key == "" {
				continue
			}
			if table != "" {
				key = table + "." + key
			}

			f := v.Field(i)

			switch {
			case isTableType(f.Type()):
				walk(f, key)
			case isArrayOfTablesType(f.Type()):
				// An array of tables ([[users]]): not a scalar.
			default:
				m[envName(key)] = setting{key: key, field: f}
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")

	return m
}

// applyEnv sets the keys named by WHARF_* variables in env, reporting bad
// values to p against the variable. It returns the variables that name no
// key, sorted.
func applyEnv(c *Config, env map[string]string, p *problems) []string {
	set := settings(c)

	var unknown []string

	for _, name := range slices.Sorted(maps.Keys(env)) {
		value := env[name]
		if !strings.HasPrefix(name, envPrefix) || name == envConfig {
			continue
		}

		if s, ok := set[name]; ok {
			p.setBy(s.key, name)
			if err := setText(s.field, s.key, value); err != nil {
				p.addBare(name, s.key, err)
			}

			continue
		}

		base, ok := strings.CutSuffix(name, fileSuffix)
		if s, known := set[base]; ok && known && isSecret(s.key) {
			p.setBy(s.key, name)
			if err := readSecret(s.field, base, value, env); err != nil {
				p.addBare(name, s.key, err)
			}

			continue
		}

		unknown = append(unknown, name)
	}

	return unknown
}

// readSecret sets field to the content of the file at path, without its
// trailing newline. base is the variable that would give the secret itself.
func readSecret(field reflect.Value, base, path string, env map[string]string) error {
	if _, both := env[base]; both {
		return fmt.Errorf("set %s or %s%s, not both", base, base, fileSuffix)
	}

	data, err := readRegular(path)
	if err != nil {
		return err
	}

	secret := strings.TrimRight(string(data), "\r\n")
	if secret == "" {
		return fmt.Errorf("%q is empty", path)
	}

	field.SetString(secret)

	return nil
}

// applyFlags sets the keys given on the command line, reporting bad values
// to p against the flag.
func applyFlags(c *Config, flags map[string]string, p *problems) {
	set := settings(c)

	for _, key := range slices.Sorted(maps.Keys(flags)) {
		name := flagName(key)

		s, ok := set[envName(key)]
		if !ok || s.key != key {
			p.addBare(name, key, fmt.Errorf("%q is not a key that a flag can set", key))

			continue
		}

		p.setBy(key, name)
		if err := setText(s.field, key, flags[key]); err != nil {
			p.addBare(name, key, err)
		}
	}
}

var (
	intsType    = reflect.TypeFor[[]int]()
	stringsType = reflect.TypeFor[[]string]()
)

// setText sets the scalar field of key from text, as the environment and
// flags give it. On error the field keeps its value; the error starts with
// the text, or for an item of a list with the key and its index
// (`ban.allow[1]: "x" is not an IP address or network`).
func setText(field reflect.Value, key, text string) error {
	switch field.Type() {
	case durationType:
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf(`%q: want a duration such as "15m"`, text)
		}

		field.Set(reflect.ValueOf(Duration{d}))

		return nil
	case sizeType:
		n, err := ParseSize(text)
		if err != nil {
			return err // it starts with the text
		}

		field.Set(reflect.ValueOf(Size{n}))

		return nil
	case intsType: // passive_ports
		lo, hi, err := parsePortRange(text)
		if err != nil {
			return err
		}

		field.Set(reflect.ValueOf([]int{lo, hi}))

		return nil
	case stringsType: // listing.hide, listing.deny, admin.hosts
		field.Set(reflect.ValueOf(splitList(text)))

		return nil
	}

	if isTextArrayType(field.Type()) { // ban.allow, access.allow, access.deny
		items := splitList(text)
		out := reflect.MakeSlice(field.Type(), len(items), len(items))

		for i, item := range items {
			if err := unmarshalItem(out.Index(i), item); err != nil {
				return fmt.Errorf("%s[%d]: %w", key, i, err)
			}
		}

		field.Set(out)

		return nil
	}

	// A type that reads its own text, such as listing.symlinks.
	if u, ok := reflect.TypeAssert[encoding.TextUnmarshaler](reflect.New(field.Type())); ok {
		if err := u.UnmarshalText([]byte(text)); err != nil {
			return err // it starts with the text
		}

		field.Set(reflect.ValueOf(u).Elem())

		return nil
	}

	switch field.Kind() { //nolint:exhaustive // the kinds of Config's scalar fields; default refuses the rest
	case reflect.String:
		field.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("%q: want true or false", text)
		}

		field.SetBool(b)
	case reflect.Int:
		n, err := strconv.Atoi(strings.TrimSpace(text))
		if err != nil {
			return fmt.Errorf("%q: want an integer", text)
		}

		field.SetInt(int64(n))
	default:
		return fmt.Errorf("%q: a %s can't be set from text", text, field.Type())
	}

	return nil
}

// splitList reads a list of strings written "a,b,c", each item without the
// spaces around it: listing.deny=".~tmp~, .*.??????". An empty text is the
// empty list. An empty item is kept, for validation to name its index.
func splitList(text string) []string {
	if strings.TrimSpace(text) == "" {
		return []string{}
	}

	items := strings.Split(text, ",")
	for i, item := range items {
		items[i] = strings.TrimSpace(item)
	}

	return items
}

// parsePortRange reads "50000-50100". The range itself (order, bounds) is
// checked by validation, like the file's [50000, 50100].
func parsePortRange(text string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(text, "-")

	lo, errA := strconv.Atoi(strings.TrimSpace(a))
	hi, errB := strconv.Atoi(strings.TrimSpace(b))
	if !ok || errA != nil || errB != nil {
		return 0, 0, fmt.Errorf(`%q: want a port range such as "50000-50100"`, text)
	}

	return lo, hi, nil
}
