package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
)

// looseConfig writes a configuration file holding a [[users]] password hash,
// with mode, and returns its path. Its passive ports are lo to lo+4.
func looseConfig(t *testing.T, mode fs.FileMode, lo int) string {
	t.Helper()

	dir := t.TempDir()
	dirs := mkdirs(t, dir, "pub", "alice")
	path := writeFile(t, dir, "wharf.toml", fmt.Sprintf(`listen = "127.0.0.1:0"
public_host = "127.0.0.1"
passive_ports = [%d, %d]

[log]
format = "json"

[anonymous]
root = %q

`, lo, lo+4, dirs[0])+userTOML(t, "alice", "pw", dirs[1]))

	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}

	return path
}

// check-config, doctor and start-up warn, without failing, about a file of
// password hashes that others can read; not about a private one.
func TestLooseFileWarnings(t *testing.T) {
	t.Parallel()

	for _, tt := range []struct {
		mode fs.FileMode
		warn bool
		lo   int // passive ports lo to lo+4, for doctor
	}{{0o644, true, 27260}, {0o600, false, 27265}} {
		t.Run(fmt.Sprintf("mode %04o", tt.mode), func(t *testing.T) {
			t.Parallel()

			path := looseConfig(t, tt.mode, tt.lo)
			want := fmt.Sprintf(`configuration file %q (it holds [[users]] password hashes) has mode 0644: `+
				`others can read it; fix: chmod 600 %s`, path, path)

			var out, errOut bytes.Buffer
			if err := run(context.Background(), []string{"check-config", "-config", path}, nil, nil, &out, &errOut); err != nil {
				t.Fatalf("check-config = %v\n%s", err, out.String())
			}
			if got := strings.Contains(errOut.String(), "wharf: warning: "+want); got != tt.warn {
				t.Errorf("check-config warned %t, want %t; stderr:\n%s", got, tt.warn, errOut.String())
			}

			out.Reset()
			if err := run(context.Background(), []string{"doctor", "-config", path}, nil, nil, &out, io.Discard); err != nil {
				t.Fatalf("doctor = %v\n%s", err, out.String())
			}
			warned := false
			for _, line := range lines(out.String(), "WARN") {
				warned = warned || line == want
			}
			if warned != tt.warn {
				t.Errorf("doctor warned %t, want %t; output:\n%s", warned, tt.warn, out.String())
			}

			wharf := startRun(t, []string{"-config", path}, nil)
			wharf.stop()

			var logged map[string]any
			for _, entry := range wharf.logs {
				if entry["msg"] == "secret file open to others" {
					logged = entry
				}
			}
			if (logged != nil) != tt.warn {
				t.Fatalf("start-up logged %v, want a warning: %t", logged, tt.warn)
			}
			if tt.warn && (logged["level"] != "warn" || logged["key"] != "config" || logged["path"] != path ||
				logged["mode"] != "0644" || logged["fix"] != "chmod 600 "+path) {
				t.Errorf("start-up logged %v", logged)
			}
		})
	}
}
