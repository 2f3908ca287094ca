package main

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"wharf/auth"
	"wharf/config"
	"wharf/server"
)

// configKeys lists the keys of the configuration struct t by their toml
// tags, each after its table ("listen", "log.level"); an array of tables
// ([[users]]) is one key.
func configKeys(t reflect.Type, table string) []string {
	var keys []string

	for f := range t.Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		if table != "" {
			key = table + "." + key
		}

		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[config.Duration]() && f.Type != reflect.TypeFor[config.Size]() {
			keys = append(keys, configKeys(f.Type, key)...)
		} else {
			keys = append(keys, key)
		}
	}

	return keys
}

// Every key of the file is in reloadKeys exactly once, and reloadKeys names
// nothing else: a new key must be classified as reloadable or restart-only.
func TestReloadKeysClassifyEveryKey(t *testing.T) {
	t.Parallel()

	keys := configKeys(reflect.TypeFor[config.Config](), "")

	seen := map[string]bool{}
	for _, k := range reloadKeys {
		if seen[k.key] {
			t.Errorf("%q is in reloadKeys twice", k.key)
		}
		seen[k.key] = true

		if !slices.Contains(keys, k.key) {
			t.Errorf("reloadKeys has %q, which is not a key of config.Config", k.key)
		}
		if keyValue(config.Default(), k.key) == nil {
			t.Errorf("keyValue finds no value for %q", k.key)
		}
	}

	for _, key := range keys {
		if !seen[key] {
			t.Errorf("%q is not in reloadKeys: say whether a reload applies it", key)
		}
	}
}

// A reload warns about the keys it cannot apply, and only those.
func TestNeedRestart(t *testing.T) {
	t.Parallel()

	old := config.Default()
	cur := config.Default()

	// Restart-only.
	cur.Listen = "127.0.0.1:21"
	cur.ShutdownTimeout = config.Duration{Duration: time.Second}
	cur.Log.Level = config.LogLevel(zapcore.DebugLevel)
	cur.TLS.Mode = config.TLSMode(server.TLSExplicit)
	cur.TLS.RequireSessionReuse = false
	cur.Anonymous.UploadRate = 1
	cur.Access.Deny = []config.Network{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}}
	cur.Storage.Bucket = "files"

	// Applied by the reload.
	cur.PublicHost = "192.0.2.1"
	cur.TLS.CertFile, cur.TLS.KeyFile = "cert.pem", "key.pem"
	cur.TLS.ClearTextAccounts = true
	cur.Anonymous.Root = "/srv/ftp"
	cur.Ban.MaxFailures = 1
	cur.Ban.Allow = []config.Network{{Prefix: netip.MustParsePrefix("192.0.2.7/32")}}
	cur.Users = []config.User{{Name: "alice", TLS: config.TLSRule(auth.TLSRequired)}}
	cur.Admin.TokenFile = "admin.token"

	want := []string{
		"listen", "shutdown_timeout", "log.level", "tls.mode", "tls.require_session_reuse", "anonymous.upload_rate",
		"access.deny", "storage.bucket",
	}
	if got := needRestart(old, cur); !slices.Equal(got, want) {
		t.Errorf("needRestart() = %q, want %q", got, want)
	}

	if got := needRestart(old, config.Default()); got != nil {
		t.Errorf("needRestart() without a change = %q, want none", got)
	}
}
