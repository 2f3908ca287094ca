package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// scenarioTimeout bounds one scenario, whatever happens.
const scenarioTimeout = 4 * time.Minute

// scenario is one numbered abuse case of issue 4 (1-10), issue 12 (11-14) or
// issue 15 (15).
type scenario struct {
	num   int
	name  string // short name, matched by -run as "<num>-<name>"
	title string // for the table
	run   func(ctx context.Context, s *suite, r *result) error
}

func (sc scenario) id() string { return fmt.Sprintf("%d-%s", sc.num, sc.name) }

var scenarios = []scenario{
	{1, "flood", "Connection flood: 5,000 from one IP, 1,600 from 100 IPs", runFlood},
	{2, "slowloris", "Slowloris: 500 trickling, 500 NOOP-ing, 100 logged-in trickling", runSlowloris},
	{3, "tls-handshake", "Implicit TLS: 500 silent, 500 half-handshakes", runTLSHandshake},
	{4, "brute-force", "1,000 wrong passwords, sequential and 16 parallel", runBruteForce},
	{5, "theft-bounce", "Passive theft and FTP bounce", runTheftBounce},
	{6, "uploads", "100 uploads of 64 MiB, 10 killed half-way", runUploads},
	{7, "same-name", "50 concurrent STORs to one name", runSameName},
	{8, "big-listing", "200,000 entries listed by 20 clients; pattern bombs", runBigListing},
	{9, "stalls", "Stalled transfers (silent STOR, RETR never read)", runStalls},
	{10, "sigterm", "SIGTERM with 50 transfers running", runSigterm},
	{11, "stalled-listings", "20 stalled LIST/NLST/MLSD of 100,000 entries", runStalledListings},
	{12, "garbage-flood", "10 connections send 2 s of 4 KiB garbage before login", runGarbageFlood},
	{13, "dropbox-fill", "Drop box filled from 8 addresses: quota, entries, depth, rates", runDropboxFill},
	{14, "guessing", "40 addresses guess one password; the owner logs in meanwhile", runGuessing},
	{15, "store-outage", "S3 store killed for 10 s under 50 downloads and uploads", runStoreOutage},
}

// suite is what the scenarios share: the binary, a temporary folder, and
// alice's password hash.
type suite struct {
	bin  string
	root string
	hash string
}

func main() {
	code, err := run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "stress:", err)
	}

	os.Exit(code) //nolint:forbidigo // main is the one place that exits
}

// run parses flags, runs the selected scenarios and writes the summary. It
// returns 1 if any check failed, 2 on a usage or set-up error.
func run() (int, error) {
	fs := flag.NewFlagSet("stress", flag.ContinueOnError)
	bin := fs.String("wharf", "bin/wharf", "path of the wharf `binary` to start")
	pattern := fs.String("run", "", "run only scenarios whose \"<number>-<name>\" matches this `regexp`, or a list of numbers like 1,4,10")
	out := fs.String("out", "STRESS.md", "write the Markdown summary to this `file` (\"\" for none; with -run, only when given explicitly)")
	keep := fs.Bool("keep", false, "keep the temporary folder (configurations, logs) even when everything passes")

	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./stress [flags]\n\nScenarios:\n")
		for _, sc := range scenarios {
			fmt.Fprintf(fs.Output(), "  %-20s %s\n", sc.id(), sc.title)
		}

		fmt.Fprintf(fs.Output(), "\nFlags:\n")
		fs.PrintDefaults()
	}

	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, nil
		}

		return 2, errors.New("invalid command line")
	}

	selected, err := selectScenarios(*pattern)
	if err != nil {
		return 2, err
	}

	outSet := false
	fs.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if *pattern != "" && !outSet {
		*out = "" // a partial run does not overwrite the full summary
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s, err := newSuite(*bin)
	if err != nil {
		return 2, err
	}

	m := describeMachine(ctx, s.bin)
	say("wharf stress suite: wharf %s, %s\nlogs and configurations: %s\n", m.wharf, m, s.root)

	started := time.Now()
	var results []*result

	for _, sc := range selected {
		if ctx.Err() != nil {
			break
		}

		results = append(results, runScenario(ctx, s, sc))
	}

	total := time.Since(started)
	failed := printSummary(results, total)

	if ctx.Err() != nil {
		say("kept %s\n", s.root)

		return 1, errors.New("interrupted: no summary written")
	}

	if *out != "" {
		if err := writeMarkdown(*out, results, m, total, len(selected) < len(scenarios)); err != nil {
			return 2, err
		}

		say("summary written to %s\n", *out)
	}

	if failed || *keep {
		say("kept %s\n", s.root)
	} else {
		_ = os.RemoveAll(s.root)
	}

	if failed {
		return 1, nil
	}

	return 0, nil
}

// selectScenarios returns the scenarios -run picks: all when empty.
func selectScenarios(pattern string) ([]scenario, error) {
	if pattern == "" {
		return scenarios, nil
	}

	if regexp.MustCompile(`^[0-9]+(,[0-9]+)*$`).MatchString(pattern) {
		var out []scenario
		for n := range strings.SplitSeq(pattern, ",") {
			num, _ := strconv.Atoi(n)
			i := slices.IndexFunc(scenarios, func(sc scenario) bool { return sc.num == num })
			if i < 0 {
				return nil, fmt.Errorf("-run: no scenario %d", num)
			}

			out = append(out, scenarios[i])
		}

		return out, nil
	}

	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("-run: %w", err)
	}

	var out []scenario
	for _, sc := range scenarios {
		if re.MatchString(sc.id()) {
			out = append(out, sc)
		}
	}

	if len(out) == 0 {
		return nil, fmt.Errorf("-run %q matches no scenario", pattern)
	}

	return out, nil
}

// newSuite checks the binary, raises the descriptor limit (wharf inherits
// it), makes the temporary folder and alice's hash.
func newSuite(bin string) (*suite, error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, err
	}

	if st, err := os.Stat(abs); err != nil || st.IsDir() {
		return nil, fmt.Errorf("wharf binary %s not found (run make build, or pass -wharf)", abs)
	}

	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, err
	}

	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("raise RLIMIT_NOFILE: %w", err)
	}

	if lim.Cur < 4096 {
		return nil, fmt.Errorf("RLIMIT_NOFILE hard limit is %d; the flood scenario needs about 4,000 descriptors", lim.Max)
	}

	hash, err := bcrypt.GenerateFromPassword([]byte(alicePassword), 10)
	if err != nil {
		return nil, err
	}

	root, err := os.MkdirTemp("", "wharf-stress-")
	if err != nil {
		return nil, err
	}

	return &suite{bin: abs, root: root, hash: string(hash)}, nil
}

// runScenario runs one scenario under its time bound; an error it returns
// is a failed check of its own.
func runScenario(ctx context.Context, s *suite, sc scenario) *result {
	r := &result{sc: sc}
	say("\n== %d. %s\n", sc.num, sc.title)

	ctx, cancel := context.WithTimeout(ctx, scenarioTimeout)
	defer cancel()

	start := time.Now()
	err := sc.run(ctx, s, r)
	r.took = time.Since(start)

	if err != nil {
		r.check("scenario ran to completion", false, "no error", "%v", err)
	}

	say("   (%s)\n", r.took.Round(100*time.Millisecond))

	return r
}

// localIP is 127.0.0.n, the client address n (1 to 254); the whole 127/8 is loopback.
func localIP(n int) net.IP {
	if n < 1 || n > 254 {
		panic(fmt.Sprintf("localIP(%d): out of 127.0.0.1-254", n))
	}

	return net.IPv4(127, 0, 0, byte(n))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()

	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// say prints progress to standard output.
func say(format string, args ...any) {
	fmt.Fprintf(os.Stdout, format, args...)
}
