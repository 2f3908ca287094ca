package server

import (
	"io/fs"
	"strings"
	"testing"
)

// FuzzCommandLine feeds arbitrary command arguments to the parsers the
// control connection runs before the engine sees a line: they never panic,
// and what they accept is within range.
func FuzzCommandLine(f *testing.F) {
	for _, seed := range []string{
		"127,0,0,1,195,80", "127,0,0,1,3,232", "1,2,3,4,5", "|1|127.0.0.1|50000|", "|2|::1|2121|", "|1|::1|1|",
		"!1!10.0.0.1!22!", "|3|x|1|", "\xff\xf4\xff\xf2ABOR", "-la /pub", "-", "--", "213-x", "\xff",
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, arg string) {
		if a := parsePORT(arg); a != nil && (a.Port < 0 || a.Port > 65535 || a.IP.To4() == nil) {
			t.Fatalf("parsePORT(%q) = %v", arg, a)
		}

		if a, family := parseEPRT(arg); a != nil {
			switch {
			case a.Port < 1 || a.Port > 65535:
				t.Fatalf("parseEPRT(%q) port %d", arg, a.Port)
			case family == "1" && a.IP.To4() == nil, family == "2" && a.IP.To4() != nil:
				t.Fatalf("parseEPRT(%q) = %v, family %s", arg, a, family)
			}
		}

		if out := telnet([]byte(arg)); len(out) > len(arg) {
			t.Fatalf("telnet(%q) grew to %q", arg, out)
		}

		if rest, _, _ := listArgs(arg); !strings.HasSuffix(arg, rest) {
			t.Fatalf("listArgs(%q) = %q, not a part of it", arg, rest)
		}

		if code, sep, ok := replyCode([]byte(arg)); ok && (code < 100 || code > 599 || (sep != ' ' && sep != '-')) {
			t.Fatalf("replyCode(%q) = %d %q", arg, code, sep)
		}
	})
}

func TestFormatReply(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		code int
		text string
		want string
	}{
		{200, "OK.", "200 OK.\r\n"},
		{211, "Features:\n UTF8\nEnd", "211-Features:\r\n UTF8\r\n211 End\r\n"},
		{214, "a\nb", "214-a\r\n214 b\r\n"},
	} {
		if got := string(appendReply(nil, tc.code, tc.text)); got != tc.want {
			t.Errorf("appendReply(%d, %q) = %q, want %q", tc.code, tc.text, got, tc.want)
		}
	}
}

func TestTelnetCommandsAreRemoved(t *testing.T) {
	t.Parallel()

	for in, want := range map[string]string{
		"ABOR\r\n":                 "ABOR\r\n",
		"\xff\xf4\xff\xf2ABOR\r\n": "ABOR\r\n",
		"\xff\xfb\x01NOOP\r\n":     "NOOP\r\n",
		"RETR a\xff\xffb\r\n":      "RETR a\xffb\r\n",
	} {
		if got := string(telnet([]byte(in))); got != want {
			t.Errorf("telnet(%q) = %q, want %q", in, got, want)
		}
	}
}

// lsMode must print what "ls -l" prints: clients parse LIST lines.
func TestLsMode(t *testing.T) {
	t.Parallel()

	for mode, want := range map[fs.FileMode]string{
		0o644:                              "-rw-r--r--",
		fs.ModeDir | 0o755:                 "drwxr-xr-x",
		fs.ModeDir | fs.ModeSticky | 0o777: "drwxrwxrwt",
		fs.ModeDir | fs.ModeSticky | 0o770: "drwxrwx--T",
		fs.ModeSetuid | 0o755:              "-rwsr-xr-x",
		fs.ModeSetgid | 0o745:              "-rwxr-Sr-x",
		fs.ModeSymlink | 0o777:             "lrwxrwxrwx",
		fs.ModeNamedPipe | 0o600:           "prw-------",
	} {
		if got := lsMode(mode); got != want {
			t.Errorf("lsMode(%v) = %q, want %q", mode, got, want)
		}
	}
}
