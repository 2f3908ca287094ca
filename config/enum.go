package config

import (
	"fmt"
	"slices"
	"strings"

	"go.uber.org/zap/zapcore"

	"wharf/auth"
	"wharf/server"
)

// The keys that take one name out of a few are decoded here, once, into
// types: each implements encoding.TextUnmarshaler, so a bad name in the file
// is reported against its key and file like any value of the wrong type
// (`wharf.toml: tls.mode: "on" is not a TLS mode (off, explicit, required or
// implicit)`), and an environment variable or a flag is read the same way.
// Where another package owns the values (server.TLSMode, auth.Access,
// auth.TLSRule, server.SymlinkMode, zapcore.Level), the type here converts
// to it; the
// other packages never see the text. MarshalText fails for a value that
// names nothing, which only a Config built in code can hold: Validate
// reports it.

// enum is the values an enum key accepts, each written in the file as its
// String().
type enum[T interface {
	comparable
	String() string
}] struct {
	what   string // "a TLS mode", for messages
	values []T
}

// enumOf lists the values of an enum; what names the kind in messages.
func enumOf[T interface {
	comparable
	String() string
}](what string, values ...T) enum[T] {
	return enum[T]{what: what, values: values}
}

// parse returns the value written text.
func (e enum[T]) parse(text []byte) (T, error) {
	for _, v := range e.values {
		if v.String() == string(text) {
			return v, nil
		}
	}

	var zero T

	return zero, fmt.Errorf("%q is not %s (%s)", text, e.what, e.list())
}

// marshal returns v as the file writes it.
func (e enum[T]) marshal(v T) ([]byte, error) {
	if !slices.Contains(e.values, v) {
		return nil, fmt.Errorf("%s is not %s (%s)", v, e.what, e.list())
	}

	return []byte(v.String()), nil
}

// list writes the names as messages list them: "a, b or c".
func (e enum[T]) list() string {
	names := make([]string, len(e.values))
	for i, v := range e.values {
		names[i] = v.String()
	}

	if len(names) < 2 {
		return strings.Join(names, "")
	}

	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// UploadMode is upload_mode: whether a new upload is written aside and
// renamed into place when it completes, or written in place.
type UploadMode int

// The upload modes.
const (
	UploadAtomic UploadMode = iota // "atomic"
	UploadDirect                   // "direct"
)

var uploadModes = enumOf("an upload mode", UploadAtomic, UploadDirect)

// String returns the mode as the file writes it.
func (m UploadMode) String() string {
	switch m {
	case UploadAtomic:
		return "atomic"
	case UploadDirect:
		return "direct"
	default:
		return fmt.Sprintf("UploadMode(%d)", int(m))
	}
}

// UnmarshalText reads a mode as written in the file.
func (m *UploadMode) UnmarshalText(text []byte) error { return unmarshal(m, uploadModes, text) }

// MarshalText writes the mode the way UnmarshalText reads it.
func (m UploadMode) MarshalText() ([]byte, error) { return uploadModes.marshal(m) }

// UploadSync is upload_sync: whether an upload's data and name are on the
// disk before its 226.
type UploadSync int

// The upload syncs.
const (
	UploadSyncAlways UploadSync = iota // "always": durable before the 226
	UploadSyncNever                    // "never": left to the kernel's write-back
)

var uploadSyncs = enumOf("an upload sync", UploadSyncAlways, UploadSyncNever)

// String returns the sync as the file writes it.
func (s UploadSync) String() string {
	switch s {
	case UploadSyncAlways:
		return "always"
	case UploadSyncNever:
		return "never"
	default:
		return fmt.Sprintf("UploadSync(%d)", int(s))
	}
}

// UnmarshalText reads a sync as written in the file.
func (s *UploadSync) UnmarshalText(text []byte) error { return unmarshal(s, uploadSyncs, text) }

// MarshalText writes the sync the way UnmarshalText reads it.
func (s UploadSync) MarshalText() ([]byte, error) { return uploadSyncs.marshal(s) }

// LogLevel is log.level, decoded into zap's type: the least important
// messages logged.
type LogLevel zapcore.Level

// zap knows more levels (dpanic, panic, fatal), which wharf does not log at.
var logLevels = enumOf("a log level", zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel)

// String returns the level as the file writes it.
func (l LogLevel) String() string { return zapcore.Level(l).String() }

// UnmarshalText reads a level as written in the file.
func (l *LogLevel) UnmarshalText(text []byte) error { return unmarshalAs(l, logLevels, text) }

// MarshalText writes the level the way UnmarshalText reads it.
func (l LogLevel) MarshalText() ([]byte, error) { return logLevels.marshal(zapcore.Level(l)) }

// LogFormat is log.format: how each log line is written.
type LogFormat int

// The log formats.
const (
	LogConsole LogFormat = iota // "console": a line of text for people
	LogJSON                     // "json": a JSON object a line, for log collectors
)

var logFormats = enumOf("a log format", LogConsole, LogJSON)

// String returns the format as the file writes it.
func (f LogFormat) String() string {
	switch f {
	case LogConsole:
		return "console"
	case LogJSON:
		return "json"
	default:
		return fmt.Sprintf("LogFormat(%d)", int(f))
	}
}

// UnmarshalText reads a format as written in the file.
func (f *LogFormat) UnmarshalText(text []byte) error { return unmarshal(f, logFormats, text) }

// MarshalText writes the format the way UnmarshalText reads it.
func (f LogFormat) MarshalText() ([]byte, error) { return logFormats.marshal(f) }

// TLSMode is tls.mode, decoded into the server's type.
type TLSMode server.TLSMode

var tlsModes = enumOf("a TLS mode", server.TLSOff, server.TLSExplicit, server.TLSRequired, server.TLSImplicit)

// String returns the mode as the file writes it.
func (m TLSMode) String() string { return server.TLSMode(m).String() }

// UnmarshalText reads a mode as written in the file.
func (m *TLSMode) UnmarshalText(text []byte) error { return unmarshalAs(m, tlsModes, text) }

// MarshalText writes the mode the way UnmarshalText reads it.
func (m TLSMode) MarshalText() ([]byte, error) { return tlsModes.marshal(server.TLSMode(m)) }

// Is reports whether m is the server's mode want.
func (m TLSMode) Is(want server.TLSMode) bool { return server.TLSMode(m) == want }

// Access is a user's access, decoded into auth's type. An empty access
// ("" or the key left out) is read-only.
type Access auth.Access

var accessLevels = enumOf("an access level", auth.ReadOnly, auth.ReadWrite, auth.WriteOnly)

// String returns the access level as the file writes it.
func (a Access) String() string { return auth.Access(a).String() }

// UnmarshalText reads an access level as written in the file; "" is read-only.
func (a *Access) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*a = Access(auth.ReadOnly)

		return nil
	}

	return unmarshalAs(a, accessLevels, text)
}

// MarshalText writes the access level the way UnmarshalText reads it.
func (a Access) MarshalText() ([]byte, error) { return accessLevels.marshal(auth.Access(a)) }

// TLSRule is a user's tls, decoded into auth's type: "required",
// "optional", or "" (the key left out) to follow [tls] clear_text_accounts.
type TLSRule auth.TLSRule

var tlsRules = enumOf("a TLS rule", auth.TLSRequired, auth.TLSOptional)

// String returns the rule as the file writes it; "" for the default.
func (r TLSRule) String() string { return auth.TLSRule(r).String() }

// UnmarshalText reads a rule as written in the file; "" is the default.
func (r *TLSRule) UnmarshalText(text []byte) error {
	if len(text) == 0 {
		*r = TLSRule(auth.TLSDefault)

		return nil
	}

	return unmarshalAs(r, tlsRules, text)
}

// MarshalText writes the rule the way UnmarshalText reads it.
func (r TLSRule) MarshalText() ([]byte, error) {
	if auth.TLSRule(r) == auth.TLSDefault {
		return []byte{}, nil
	}

	return tlsRules.marshal(auth.TLSRule(r))
}

// Backend is storage.backend: where the files served live.
type Backend int

// The storage backends.
const (
	BackendDisk Backend = iota // "disk": folders on the local disk
	BackendS3                  // "s3": key prefixes in an S3-compatible bucket
)

var backends = enumOf("a storage backend", BackendDisk, BackendS3)

// String returns the backend as the file writes it.
func (b Backend) String() string {
	switch b {
	case BackendDisk:
		return "disk"
	case BackendS3:
		return "s3"
	default:
		return fmt.Sprintf("Backend(%d)", int(b))
	}
}

// UnmarshalText reads a backend as written in the file.
func (b *Backend) UnmarshalText(text []byte) error { return unmarshal(b, backends, text) }

// MarshalText writes the backend the way UnmarshalText reads it.
func (b Backend) MarshalText() ([]byte, error) { return backends.marshal(b) }

// SymlinkMode is listing.symlinks, decoded into the server's type.
type SymlinkMode server.SymlinkMode

var symlinkModes = enumOf("a symlinks mode", server.SymlinksAsLinks, server.SymlinksAsTargets)

// String returns the mode as the file writes it.
func (m SymlinkMode) String() string { return server.SymlinkMode(m).String() }

// UnmarshalText reads a mode as written in the file.
func (m *SymlinkMode) UnmarshalText(text []byte) error { return unmarshalAs(m, symlinkModes, text) }

// MarshalText writes the mode the way UnmarshalText reads it.
func (m SymlinkMode) MarshalText() ([]byte, error) {
	return symlinkModes.marshal(server.SymlinkMode(m))
}

// unmarshal sets *dst to the value text names in e; on error *dst keeps its value.
func unmarshal[T interface {
	comparable
	String() string
}](dst *T, e enum[T], text []byte) error {
	v, err := e.parse(text)
	if err != nil {
		return err
	}

	*dst = v

	return nil
}

// unmarshalAs is unmarshal for a type of this package, D, that converts
// from another package's type, T, such as TLSMode from server.TLSMode.
func unmarshalAs[D ~int | ~int8, T interface {
	~int | ~int8
	String() string
}](dst *D, e enum[T], text []byte) error {
	v, err := e.parse(text)
	if err != nil {
		return err
	}

	*dst = D(v)

	return nil
}
