package deploy

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"wharf/config"
	"wharf/internal/testenv"
)

// unitCopy writes the unit to a temporary folder under name, with the
// binary's path (which this machine need not have) replaced by an
// executable that exists, so that systemd-analyze verify checks the rest.
// edit, when not nil, changes the text first.
func unitCopy(t *testing.T, name string, edit func(string) string) string {
	t.Helper()

	data, err := os.ReadFile("wharf.service")
	if err != nil {
		t.Fatal(err)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}

	text := strings.ReplaceAll(string(data), "/usr/local/bin/wharf", self)
	if edit != nil {
		text = edit(text)
	}

	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}

	return path
}

// verify runs systemd-analyze verify on unit and returns what it says. It
// exits 0 for a directive it doesn't know ("Unknown key name ..., ignoring"),
// so any output at all counts as a finding.
func verify(ctx context.Context, t *testing.T, analyze, unit string) string {
	t.Helper()

	cmd := exec.CommandContext(ctx, analyze, "verify", "--man=no", unit)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0")

	out, err := cmd.CombinedOutput()
	if err != nil {
		return strings.TrimSpace(string(out)) + "\n(" + err.Error() + ")"
	}

	return strings.TrimSpace(string(out))
}

// TestSystemdUnit checks deploy/wharf.service with systemd's own tools, and
// that it says what the README promises: the wharf user, port 21 through
// one capability, a sandbox, reload by SIGHUP.
func TestSystemdUnit(t *testing.T) {
	analyze := testenv.Tool(t, "systemd-analyze")

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	t.Run("systemd-analyze verify finds nothing", func(t *testing.T) {
		if out := verify(ctx, t, analyze, unitCopy(t, "wharf.service", nil)); out != "" {
			t.Errorf("systemd-analyze verify:\n%s", out)
		}
	})

	// The check above is worth something only if it sees mistakes.
	t.Run("systemd-analyze verify finds a misspelt directive", func(t *testing.T) {
		typo := func(s string) string { return strings.Replace(s, "ProtectSystem=", "ProtectSytem=", 1) }
		if out := verify(ctx, t, analyze, unitCopy(t, "wharf.service", typo)); !strings.Contains(out, "ProtectSytem") {
			t.Errorf("a misspelt directive went unreported: %q", out)
		}
	})

	// systemd's exposure score runs from 0 (locked down) to 10; "OK" is below 4.
	t.Run("systemd-analyze security rates the sandbox 2.0 or better", func(t *testing.T) {
		unit := unitCopy(t, "wharf.service", nil)
		cmd := exec.CommandContext(ctx, analyze, "security", "--offline=true", "--threshold=20", "--no-pager", unit)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("systemd-analyze security: %v\n%s", err, out)
		}
	})

	t.Run("the unit runs wharf as its own user, on port 21, reloading with SIGHUP", func(t *testing.T) {
		d := directives(t, "wharf.service")

		want := map[string][]string{
			"User":                    {"wharf"},
			"AmbientCapabilities":     {"CAP_NET_BIND_SERVICE"},
			"CapabilityBoundingSet":   {"CAP_NET_BIND_SERVICE"},
			"NoNewPrivileges":         {"yes"},
			"ProtectSystem":           {"strict"},
			"ProtectHome":             {"yes"},
			"PrivateTmp":              {"yes"},
			"ReadWritePaths":          {"/srv/ftp/home"},
			"RestrictAddressFamilies": {"AF_INET AF_INET6 AF_UNIX"},
			"SystemCallFilter":        {"@system-service", "~@privileged @resources"},
			"Environment":             {"WHARF_CONFIG=/etc/wharf/wharf.toml"},
			"ExecStart":               {"/usr/local/bin/wharf"},
			"ExecReload":              {"/usr/local/bin/wharf check-config", "/bin/kill -HUP $MAINPID"},
		}
		for key, values := range want {
			if !slices.Equal(d[key], values) {
				t.Errorf("%s=%q, want %q", key, d[key], values)
			}
		}

		stop, err := time.ParseDuration(strings.Join(d["TimeoutStopSec"], ""))
		if shutdown := config.Default().ShutdownTimeout.Duration; err != nil || stop <= shutdown {
			t.Errorf("TimeoutStopSec=%v (%v) is not longer than shutdown_timeout %v", d["TimeoutStopSec"], err, shutdown)
		}
	})

	t.Run("the sysusers file makes the unit's user", func(t *testing.T) {
		sysusers := testenv.Tool(t, "systemd-sysusers")

		conf, err := filepath.Abs("wharf.sysusers")
		if err != nil {
			t.Fatal(err)
		}

		root := t.TempDir()
		if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}

		out, err := exec.CommandContext(ctx, sysusers, "--root="+root, "--dry-run", conf).CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("Creating user 'wharf'")) {
			t.Errorf("systemd-sysusers --dry-run: %v\n%s", err, out)
		}
	})
}

// directives reads a unit file's KEY=value lines, comments left out, each
// key's values in order.
func directives(t *testing.T, name string) map[string][]string {
	t.Helper()

	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	d := map[string][]string{}

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if key, value, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			d[key] = append(d[key], value)
		}
	}

	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}

	return d
}
