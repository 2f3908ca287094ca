package logsafe_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"wharf/internal/logsafe"
)

func TestString(t *testing.T) {
	t.Parallel()

	cases := []struct{ in, want string }{
		{"plain name.iso", "plain name.iso"},
		{"café/ü", "café/ü"},
		{"a\nb\r\tc", `a\nb\r\tc`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"del\x7f", `del\x7f`},
		{"csi\u009b31m", `csi\u009b31m`},
		{"nel\u0085", `nel\u0085`},
		{"gpj\u202eexe.", `gpj\u202eexe.`},
		{"\u2066iso\u2069 \u061c\u200e\u200f\u202a\u202b\u202c\u202d", `\u2066iso\u2069 \u061c\u200e\u200f\u202a\u202b\u202c\u202d`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"bad\xffutf8\xc3", `bad\xffutf8\xc3`},
		{`back\slash`, `back\slash`},
		{"", ""},
	}

	for _, tc := range cases {
		if got := logsafe.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}

		if got := logsafe.Safe(tc.in); got != (tc.in == tc.want) {
			t.Errorf("Safe(%q) = %v", tc.in, got)
		}
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

// Every string-valued field, the message and fields added with With reach
// the encoder escaped; other fields are untouched.
func TestCoreEscapesEveryStringField(t *testing.T) {
	t.Parallel()

	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(logsafe.Core(zapcore.NewCore(enc, zapcore.AddSync(&buf), zap.DebugLevel)))

	evil := "mal\u202eory\u2028\u009b"
	log.With(zap.String("with", evil)).Info("msg "+evil,
		zap.String("s", evil),
		zap.ByteString("b", []byte(evil)),
		zap.Stringer("st", stringer(evil)),
		zap.Error(errors.New("open /x/"+evil+": denied")),
		zap.Any("any", evil),
		zap.Strings("list", []string{"ok", evil}),
		zap.Any("anylist", []string{evil}),
		zap.Dict("group", zap.String("g", evil), zap.Stringer("gs", stringer(evil))),
		zap.Int("n", 7),
	)

	raw := buf.Bytes()
	for _, r := range []string{"\u202e", "\u2028", "\u009b"} {
		if bytes.Contains(raw, []byte(r)) {
			t.Errorf("log line carries %q raw: %s", r, raw)
		}
	}

	var entry map[string]any
	if err := json.Unmarshal(raw, &entry); err != nil {
		t.Fatal(err)
	}

	want := `mal\u202eory\u2028\u009b`
	for _, key := range []string{"with", "s", "b", "st", "any"} {
		if entry[key] != want {
			t.Errorf("%s = %q, want %q", key, entry[key], want)
		}
	}

	if entry["msg"] != "msg "+want || entry["error"] != "open /x/"+want+": denied" || entry["n"] != float64(7) {
		t.Errorf("entry = %v", entry)
	}

	if l, _ := entry["anylist"].([]any); len(l) != 1 || l[0] != want {
		t.Errorf("anylist = %v", entry["anylist"])
	}

	if l, _ := entry["list"].([]any); len(l) != 2 || l[0] != "ok" || l[1] != want {
		t.Errorf("list = %v", entry["list"])
	}

	if g, _ := entry["group"].(map[string]any); g["g"] != want || g["gs"] != want {
		t.Errorf("group = %v", entry["group"])
	}
}

// Wrapping twice escapes once.
func TestCoreWrapsOnce(t *testing.T) {
	t.Parallel()

	inner := zapcore.NewNopCore()
	once := logsafe.Core(inner)

	if logsafe.Core(once) != once {
		t.Error("a wrapped core was wrapped again")
	}
}

func BenchmarkStringSafe(b *testing.B) {
	s := "/pub/releases/wharf-1.2.3-linux-amd64.tar.gz"
	for b.Loop() {
		_ = logsafe.String(s)
	}
}
