package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The command-line conventions of Go's own tools: help, asked for with -h,
// -help or "wharf help [command]", goes to stdout and exits 0; a command
// line wharf can't run gets one line on stderr saying why and where the
// help is, and exits 2; any other failure exits 1.

// subcommands are wharf's commands besides serving, in the order help lists them.
var subcommands = []string{"check-config", "doctor", "healthcheck", "snapshot-wait", "hash-password", "version", "help"}

// usageError is a command line wharf cannot run.
type usageError struct {
	cmd string // the command: "wharf", "wharf check-config"
	msg string
}

func (e *usageError) Error() string {
	help := "wharf -help"
	if sub, ok := strings.CutPrefix(e.cmd, "wharf "); ok && sub != "help" {
		help = "wharf help " + sub
	}

	return fmt.Sprintf("%s (see %s)", e.msg, help)
}

// exitCode is the status main exits with after run returned err (not nil):
// 2 for a command line wharf cannot run, 1 for anything else.
func exitCode(err error) int {
	if _, ok := errors.AsType[*usageError](err); ok {
		return 2
	}

	return 1
}

// parseArgs parses args with fs, flags before and after arguments alike
// (wharf check-config wharf.toml -print), and returns the arguments; "--"
// ends the flags. -h and -help print fs's help on stdout and return
// flag.ErrHelp, which the command returns as nil. A wrong flag is a
// usageError: the flag package's own message and usage are not printed.
func parseArgs(fs *flag.FlagSet, args []string, stdout io.Writer) ([]string, error) {
	fs.SetOutput(io.Discard)

	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stdout)
				fs.Usage()

				return nil, flag.ErrHelp
			}

			return nil, &usageError{cmd: fs.Name(), msg: err.Error()}
		}

		rest := fs.Args()
		if len(rest) == 0 {
			return positional, nil
		}

		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(positional, rest...), nil
		}

		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// helped turns the flag.ErrHelp of parseArgs into success: help was asked
// for, and given.
func helped(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}

	return err
}

// commandConfig parses a command's arguments (its flags, and at most one
// configuration file, which must agree with -config, read from flagPath once
// parsed) and returns the file to read. ok is false when the command must
// stop: with err nil after its help was printed, else with the usage error.
func commandConfig(fs *flag.FlagSet, flagPath *string, args []string, stdout io.Writer) (path string, ok bool, err error) {
	args, err = parseArgs(fs, args, stdout)
	if err != nil {
		return "", false, helped(err)
	}

	path, err = configArg(fs, *flagPath, args)

	return path, err == nil, err
}

// configArg is the configuration file a command reads: the path of
// -config (flagPath) or its one argument. Both may be given if they name
// the same file; more arguments, or two different files, are a usageError:
// wharf never ignores a path it was given.
func configArg(fs *flag.FlagSet, flagPath string, args []string) (string, error) {
	switch {
	case len(args) == 0:
		return flagPath, nil
	case len(args) > 1:
		return "", &usageError{cmd: fs.Name(), msg: fmt.Sprintf("unexpected argument %q: give one configuration file", args[1])}
	case flagPath != "" && !sameFile(flagPath, args[0]):
		return "", &usageError{cmd: fs.Name(), msg: fmt.Sprintf("-config %s and the argument %s are different files: give one",
			flagPath, args[0])}
	}

	return args[0], nil
}

// sameFile reports whether paths a and b name the same file.
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}

	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b) //nolint:gosec // the operator's own path, from the command line

	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// usageFunc prints a command's help: its text, then its flags.
func usageFunc(fs *flag.FlagSet, text string) func() {
	return func() {
		fmt.Fprint(fs.Output(), text)

		if hasFlags(fs) {
			fmt.Fprintln(fs.Output(), "\nFlags (-flag and --flag both work):")
			fs.PrintDefaults()
		}
	}
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })

	return n > 0
}

// printVersion answers "wharf version", as -version does.
func printVersion(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wharf version", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, "Usage: wharf version\n\nPrint the version of wharf (also: wharf -version).\n")

	args, err := parseArgs(fs, args, stdout)
	if err != nil {
		return helped(err)
	}

	if len(args) > 0 {
		return &usageError{cmd: fs.Name(), msg: fmt.Sprintf("unexpected argument %q", args[0])}
	}

	fmt.Fprintln(stdout, "wharf", buildVersion())

	return nil
}

// help answers "wharf help [command]": wharf's help, or the command's, on
// stdout.
func help(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) > 1 {
		return &usageError{cmd: "wharf help", msg: fmt.Sprintf("unexpected argument %q: give one command", args[1])}
	}

	name := "help"
	if len(args) == 1 {
		name = args[0] //nolint:gosec // G602 does not see len(args) == 1
	}

	switch {
	case name == "help":
		return run(ctx, []string{"-help"}, env, nil, stdout, stderr)
	case slices.Contains(subcommands, name):
		return run(ctx, []string{name, "-help"}, env, nil, stdout, stderr)
	}

	return &usageError{cmd: "wharf help", msg: fmt.Sprintf("unknown command %q: the commands are %s", name,
		strings.Join(subcommands, ", "))}
}
