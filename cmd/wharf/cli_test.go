package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// wharfCommand runs the test binary as wharf (see asWharf) with args, in
// dir, with no WHARF_* variable of the test's environment, and returns its
// exit status, stdout and stderr.
func wharfCommand(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "WHARF_") })
	cmd.Env = append(cmd.Env, asWharf+"=1")

	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut

	err := cmd.Run()

	// The variable that makes the test binary wharf is one wharf does not know.
	stderr = strings.Replace(errOut.String(), "wharf: warning: unknown environment variable "+asWharf+" (ignored)\n", "", 1)

	if exit, ok := errors.AsType[*exec.ExitError](err); ok {
		return exit.ExitCode(), out.String(), stderr
	} else if err != nil {
		t.Fatalf("wharf %s: %v", strings.Join(args, " "), err)
	}

	return 0, out.String(), stderr
}

// The real binary follows Go's command-line conventions: help on stdout
// with status 0, a command line it can't run on one line of stderr with
// status 2 and where to find the help.
func TestCommandLineConventions(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub := mkdirs(t, dir, "pub")[0]
	good := writeFile(t, dir, "good.toml", fmt.Sprintf("[anonymous]\nroot = %q\n", pub))
	bad := writeFile(t, dir, "bad.toml", "pasive_ports = [1, 2]\n")

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a part of it; "" for empty
		stderr string // a part of its one line; "" for empty
	}{
		{"-h prints the help", []string{"-h"}, 0, "wharf check-config [FILE] [-print]", ""},
		{"-help prints the help", []string{"-help"}, 0, "Exit status: 0 on success", ""},
		{"--help prints the help", []string{"--help"}, 0, "wharf help [COMMAND]", ""},
		{"help prints the help", []string{"help"}, 0, "Flags (-flag and --flag both work):", ""},
		{"help names a command", []string{"help", "check-config"}, 0, "Usage: wharf check-config [FILE]", ""},
		{"a command's -h", []string{"doctor", "-h"}, 0, "Usage: wharf doctor [FILE]", ""},
		{"a command's -help", []string{"healthcheck", "-help"}, 0, "-addr host:port", ""},
		{"hash-password's help", []string{"hash-password", "-h"}, 0, "Usage: wharf hash-password", ""},
		{"version", []string{"version"}, 0, "wharf " + buildVersion() + "\n", ""},
		{"-version", []string{"-version"}, 0, "wharf " + buildVersion() + "\n", ""},
		{"an unknown flag", []string{"-frobnicate"}, 2, "", "flag provided but not defined: -frobnicate (see wharf -help)"},
		{"a command's unknown flag", []string{"check-config", "-frobnicate"}, 2, "",
			"-frobnicate (see wharf help check-config)"},
		{"a flag without its value", []string{"doctor", "-config"}, 2, "", "flag needs an argument: -config (see wharf help doctor)"},
		{"a mistyped command", []string{"chek-config"}, 2, "", `unknown command "chek-config"`},
		{"help on an unknown command", []string{"help", "nope"}, 2, "", `unknown command "nope"`},
		{"two configuration files", []string{"check-config", good, bad}, 2, "", "give one configuration file"},
		{"-config and another file", []string{"check-config", "-config", good, bad}, 2, "", "are different files: give one"},
		{"an argument to hash-password", []string{"hash-password", "x"}, 2, "", "the password is read on stdin"},
		{"check-config reads its argument", []string{"check-config", bad}, 1, "pasive_ports", "problem(s)"},
		{"check-config accepts a good argument", []string{"check-config", good}, 0, good + ": OK", ""},
		{"flags after the argument", []string{"check-config", good, "-print"}, 0, "[anonymous]", ""},
		{"-config and the same file", []string{"check-config", "-config", good, "./" + filepath.Base(good)}, 0, ": OK", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			code, stdout, stderr := wharfCommand(t, dir, tt.args...)
			if code != tt.code {
				t.Errorf("wharf %s: status %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), code, tt.code, stdout, stderr)
			}

			if tt.stdout == "" && stdout != "" || !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q, want it to hold %q", stdout, tt.stdout)
			}

			switch {
			case tt.stderr == "" && stderr != "":
				t.Errorf("stderr %q, want none", stderr)
			case tt.stderr != "" && (!strings.Contains(stderr, tt.stderr) || strings.Count(stderr, "\n") != 1 ||
				!strings.HasPrefix(stderr, "wharf: ")):
				t.Errorf("stderr %q, want one line holding %q", stderr, tt.stderr)
			}
		})
	}
}

// The server takes its configuration file as an argument too.
func TestServeTakesTheConfigurationAsAnArgument(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub := mkdirs(t, dir, "pub")[0]
	cfgPath := writeFile(t, dir, "wharf.toml", fmt.Sprintf("listen = \"127.0.0.1:0\"\nbanner = \"from the argument\"\n\n"+
		"[log]\nformat = \"json\"\n\n[anonymous]\nroot = %q\n", pub))

	wharf := startRun(t, []string{cfgPath}, nil)
	if got := greeting(t, wharf.addr); got != "from the argument" {
		t.Errorf("greeting %q: the file given as an argument was not read", got)
	}
}
