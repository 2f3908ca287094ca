package config

import (
	"encoding"
	"strings"
	"testing"

	"go.uber.org/zap/zapcore"

	"wharf/auth"
	"wharf/server"
)

// Every enum key decodes each of its names into its value and writes it
// back the same, and refuses any other text with the names it takes.
func TestEnumsDecodeOnce(t *testing.T) {
	t.Parallel()

	type enumValue interface {
		encoding.TextMarshaler
		encoding.TextUnmarshaler
	}

	tests := []struct {
		key   string
		new   func() enumValue // a zero value to decode into
		names map[string]any   // text -> value
		bad   string           // the start of the message for "nope"
	}{
		{
			"upload_mode", func() enumValue { return new(UploadMode) },
			map[string]any{"atomic": UploadAtomic, "direct": UploadDirect},
			`"nope" is not an upload mode (atomic or direct)`,
		},
		{
			"upload_sync", func() enumValue { return new(UploadSync) },
			map[string]any{"always": UploadSyncAlways, "never": UploadSyncNever},
			`"nope" is not an upload sync (always or never)`,
		},
		{
			"log.level", func() enumValue { return new(LogLevel) },
			map[string]any{
				"debug": LogLevel(zapcore.DebugLevel), "info": LogLevel(zapcore.InfoLevel),
				"warn": LogLevel(zapcore.WarnLevel), "error": LogLevel(zapcore.ErrorLevel),
			},
			`"nope" is not a log level (debug, info, warn or error)`,
		},
		{
			"log.format", func() enumValue { return new(LogFormat) },
			map[string]any{"console": LogConsole, "json": LogJSON},
			`"nope" is not a log format (console or json)`,
		},
		{
			"tls.mode", func() enumValue { return new(TLSMode) },
			map[string]any{
				"off": TLSMode(server.TLSOff), "explicit": TLSMode(server.TLSExplicit),
				"required": TLSMode(server.TLSRequired), "implicit": TLSMode(server.TLSImplicit),
			},
			`"nope" is not a TLS mode (off, explicit, required or implicit)`,
		},
		{
			"access", func() enumValue { return new(Access) },
			map[string]any{
				"read-only": Access(auth.ReadOnly), "read-write": Access(auth.ReadWrite),
				"write-only": Access(auth.WriteOnly),
			},
			`"nope" is not an access level (read-only, read-write or write-only)`,
		},
		{
			"storage.backend", func() enumValue { return new(Backend) },
			map[string]any{"disk": BackendDisk, "s3": BackendS3},
			`"nope" is not a storage backend (disk or s3)`,
		},
		{
			"listing.symlinks", func() enumValue { return new(SymlinkMode) },
			map[string]any{"links": SymlinkMode(server.SymlinksAsLinks), "targets": SymlinkMode(server.SymlinksAsTargets)},
			`"nope" is not a symlinks mode (links or targets)`,
		},
	}

	for _, tt := range tests {
		t.Run(tt.key+" reads and writes each name", func(t *testing.T) {
			t.Parallel()

			for text, want := range tt.names {
				v := tt.new()
				if err := v.UnmarshalText([]byte(text)); err != nil {
					t.Fatalf("UnmarshalText(%q) = %v", text, err)
				}

				got := deref(v)
				if got != want {
					t.Errorf("UnmarshalText(%q) = %v, want %v", text, got, want)
				}

				if out, err := v.MarshalText(); err != nil || string(out) != text {
					t.Errorf("MarshalText() after %q = %q, %v", text, out, err)
				}
			}

			v := tt.new()
			err := v.UnmarshalText([]byte("nope"))
			if err == nil || !strings.HasPrefix(err.Error(), tt.bad) {
				t.Errorf(`UnmarshalText("nope") = %v, want %q`, err, tt.bad)
			}
		})
	}
}

// deref returns the value a pointer made by new points to.
func deref(v any) any {
	switch p := v.(type) {
	case *UploadMode:
		return *p
	case *UploadSync:
		return *p
	case *LogLevel:
		return *p
	case *LogFormat:
		return *p
	case *TLSMode:
		return *p
	case *Access:
		return *p
	case *Backend:
		return *p
	case *SymlinkMode:
		return *p
	default:
		return nil
	}
}

// An empty access is read-only, as when the key is left out; a value that
// names no level, which only a Config built in code can hold, is refused by
// Validate.
func TestAccessLevel(t *testing.T) {
	t.Parallel()

	var a Access
	if err := a.UnmarshalText(nil); err != nil || auth.Access(a) != auth.ReadOnly {
		t.Errorf(`UnmarshalText("") = %v, %v; want read-only`, a, err)
	}

	if got := (User{}).AccessLevel(); got != auth.ReadOnly {
		t.Errorf("User{}.AccessLevel() = %v, want read-only", got)
	}

	p := &problems{}
	checkUsers(p, []User{{Name: "eve", Password: testHash, Home: ".", Access: Access(7)}}, false, TLSMode(server.TLSOff), false, nil)
	if err := p.err(); err == nil || !strings.Contains(err.Error(), `users[0] "eve": access: Access(7) is not an access level`) {
		t.Errorf("checkUsers() with access 7 = %v", err)
	}
}
