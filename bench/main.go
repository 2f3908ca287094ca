// Command bench measures wharf against vsftpd on loopback, as issue 5 asks:
// the same scenarios for both servers, interleaved round by round, server and
// client pinned to different cores, every transferred byte checked with
// SHA-256. It prints a Markdown table of medians and writes
// bench/results/<date>/ with table.md, raw.jsonl and machine.txt.
//
//	go run ./bench -wharf bin/wharf -rounds 3    # make bench
//	go run ./bench -wharf bin/wharf -quick       # make bench-quick
//
// See bench/README.md for how to read the table.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1) //nolint:forbidigo // main reports run's error
	}
}

// options are the command line.
type options struct {
	wharf      string
	rounds     int
	quick      bool
	only       *regexp.Regexp
	out        string
	profile    bool
	profileFor time.Duration
}

// plan is the run's sizes: the full plan or -quick's.
func (o options) plan() plan {
	if o.quick {
		return quickPlan
	}

	return fullPlan
}

// bench is what the scenarios share.
type bench struct {
	fx    *fixtures
	plan  plan
	arena []byte       // downloads land here, so the client never hashes inside a timed window
	seq   atomic.Int64 // makes upload names unique
	win   window       // the current measurement's timed windows
	s3    *s3Store     // the S3 group's bucket; nil without a store

	pinned bool // the server runs alone on core 0, as far as taskset can make it
}

// record is one measurement: one line of raw.jsonl.
type record struct {
	Time       string  `json:"time"`
	Round      int     `json:"round"`
	Scenario   string  `json:"scenario"`
	Server     string  `json:"server"`
	Value      float64 `json:"value"`
	Unit       string  `json:"unit"`
	Seconds    float64 `json:"seconds,omitempty"` // the timed window
	Bytes      int64   `json:"bytes,omitempty"`
	Ops        int64   `json:"ops,omitempty"`
	CPUSeconds float64 `json:"server_cpu_seconds"`
	CPUPer     float64 `json:"server_cpu_per,omitempty"`
	CPUUnit    string  `json:"server_cpu_unit,omitempty"` // CPUPer is CPU seconds per this
	// Noise, as fractions of the timed windows on the server's core (core 0,
	// when pinned): other processes, interrupt and softirq work (much of it
	// the loopback traffic itself), and hypervisor steal.
	CoreOther *float64 `json:"server_core_other,omitempty"`
	CoreIRQ   *float64 `json:"server_core_irq,omitempty"`
	CoreSteal *float64 `json:"server_core_steal,omitempty"`
	Verified  bool     `json:"verified"`
	Detail    string   `json:"detail,omitempty"`
	Error     string   `json:"error,omitempty"`
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)

	var o options

	only := fs.String("only", "", "run only the scenarios whose id or title matches this `regexp` "+
		"(ids: retr stor small parallel anon password idle list ftps s3stor s3par)")
	fs.StringVar(&o.wharf, "wharf", "bin/wharf", "wharf `binary` to measure (make build writes bin/wharf)")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved `rounds` (each runs every scenario on every server)")
	fs.BoolVar(&o.quick, "quick", false, "a subset, smaller (RETR 256 MiB, 500 small files, anonymous sessions, "+
		"idle memory, LIST), one round unless -rounds is given")
	fs.StringVar(&o.out, "out", filepath.Join("bench", "results"), "`folder` that receives the run's results folder")
	fs.BoolVar(&o.profile, "profile", false, "after the rounds, take a CPU profile of wharf (admin pprof) per scenario")
	fs.DurationVar(&o.profileFor, "profile-for", 10*time.Second, "`duration` of each -profile capture")

	if err := fs.Parse(args); err != nil {
		return o, err
	}

	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	roundsGiven := false
	fs.Visit(func(f *flag.Flag) { roundsGiven = roundsGiven || f.Name == "rounds" })

	if o.quick && !roundsGiven {
		o.rounds = 1
	}

	if o.rounds < 1 || o.rounds > 20 {
		return o, fmt.Errorf("-rounds %d: want 1 to 20", o.rounds)
	}

	if o.profileFor < time.Second || o.profileFor > time.Minute {
		return o, fmt.Errorf("-profile-for %s: want 1s to 1m", o.profileFor)
	}

	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return o, fmt.Errorf("-only: %w", err)
		}

		o.only = re
	}

	if _, err := os.Stat(o.wharf); err != nil {
		return o, fmt.Errorf("-wharf: %w (run make build first)", err)
	}

	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	o, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}

		return err
	}

	p := o.plan()

	rows := selectRows(p, o)
	if len(rows) == 0 {
		return errors.New("no scenario selected")
	}

	started := time.Now()
	m := machine{ncpu: runtime.NumCPU(), loadStart: loadAverage()}

	pin := setUpPinning(ctx, m.ncpu)
	if pin.taskset != "" {
		runtime.GOMAXPROCS(1)
	}

	m.pinning = pin.note

	needs, arenaSize, treeSize := sizes(p, rows)
	base, storage := tempBase(treeSize)
	m.storage = storage

	fmt.Fprintf(stderr, "bench: %s; %s\n", pin.note, storage)
	fmt.Fprintf(stderr, "bench: writing fixtures (%s) and SHA-256 sums...\n", human(treeSize))

	b := &bench{plan: p, arena: make([]byte, arenaSize), pinned: pin.taskset != ""}
	for i := 0; i < len(b.arena); i += 4096 { // fault the pages in before any timed window
		b.arena[i] = 1
	}

	fx, err := makeFixtures(base, p, needs, b.arena)
	if err != nil {
		return err
	}
	defer func() {
		if err := fx.remove(); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
		}
	}()

	b.fx = fx

	var notes []string

	if hasS3(rows) {
		s3, note, err := openS3(ctx)
		if err != nil {
			return err
		}

		notes = append(notes, note)

		if s3 != nil {
			defer func() {
				if err := s3.remove(); err != nil {
					fmt.Fprintln(stderr, "bench:", err)
				}
			}()

			b.s3 = s3
		}
	}

	targets, more, err := startServers(ctx, o, fx, pin, b.s3)
	if err != nil {
		return err
	}

	notes = append(notes, more...)

	defer func() {
		for _, t := range targets {
			t.stop()
		}
	}()

	exits, cpuNote := watchServers(targets, o.wharf)
	if exits != nil {
		defer exits.close()
	}

	notes = append(notes, cpuNote)

	m.wharf = wharfVersion(ctx, o.wharf)
	m.vsftpd = "not installed"

	if _, err := os.Stat(vsftpdPath); err == nil {
		m.vsftpd = vsftpdVersion(ctx)
	}

	dir := filepath.Join(o.out, started.Format("2006-01-02_150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // results are meant to be read
		return fmt.Errorf("results folder: %w", err)
	}

	results, err := measureRounds(ctx, b, rows, targets, o.rounds, filepath.Join(dir, "raw.jsonl"), stderr)
	if err != nil {
		return err
	}

	if o.profile {
		notes = append(notes, profileAll(ctx, b, rows, targets[0], dir, o, stderr)...)
	}

	for _, t := range targets {
		t.stop()
	}

	m.loadEnd = loadAverage()
	m.elapsed = time.Since(started)

	table := renderTable(rows, targets, results, o, m, notes, started)
	if err := os.WriteFile(filepath.Join(dir, "table.md"), []byte(table), 0o644); err != nil { //nolint:gosec // results are meant to be read
		return fmt.Errorf("results: %w", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "machine.txt"), []byte(m.describe(args)), 0o644); err != nil { //nolint:gosec // results are meant to be read
		return fmt.Errorf("results: %w", err)
	}

	fmt.Fprint(stdout, table)
	fmt.Fprintf(stdout, "\nResults written to %s\n", dir)

	for _, byServer := range results {
		for _, recs := range byServer {
			for _, r := range recs {
				if r.Error != "" {
					return errors.New("some measurements failed (see the table's errors)")
				}
			}
		}
	}

	return nil
}

// selectRows returns the scenarios of the plan that -quick and -only keep.
func selectRows(p plan, o options) []scenario {
	var rows []scenario

	for _, sc := range append(scenarios(p), s3ListRows()...) {
		if o.quick && !sc.quick {
			continue
		}

		if o.only != nil && !o.only.MatchString(sc.id) && !o.only.MatchString(sc.title) {
			continue
		}

		rows = append(rows, sc)
	}

	return rows
}

// measureRounds runs every row on every server, round after round (wharf
// then vsftpd for each row), writes each measurement to rawPath as it comes
// and returns them by row id and server name.
func measureRounds(ctx context.Context, b *bench, rows []scenario, targets []*target, rounds int, rawPath string,
	stderr io.Writer,
) (map[string]map[string][]record, error) {
	raw, err := os.Create(rawPath)
	if err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	defer raw.Close()

	enc := json.NewEncoder(raw)
	results := map[string]map[string][]record{}

	for round := 1; round <= rounds; round++ {
		for _, sc := range rows {
			for _, t := range targets {
				if ok, _ := sc.applies(t); !ok || sc.s3 == notS3(t) {
					continue
				}

				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("interrupted: %w", err)
				}

				rec := measure(ctx, b, sc, t, round)
				if err := enc.Encode(rec); err != nil {
					return nil, fmt.Errorf("raw.jsonl: %w", err)
				}

				if results[sc.id] == nil {
					results[sc.id] = map[string][]record{}
				}

				results[sc.id][t.name] = append(results[sc.id][t.name], rec)
				fmt.Fprintln(stderr, progressLine(rec, round, rounds))
			}
		}
	}

	if err := raw.Close(); err != nil {
		return nil, fmt.Errorf("raw.jsonl: %w", err)
	}

	return results, nil
}

// sizes returns the fixtures the rows read, the client buffer they need and
// the bytes the tree takes on disk (with room for one upload).
func sizes(p plan, rows []scenario) (needs need, arena, tree int64) {
	arena = 16 << 20 // fixture scratch and LIST buffer
	tree = 64 << 20

	for _, sc := range rows {
		needs |= sc.needs

		switch sc.id {
		case "retr", "ftps":
			arena = max(arena, p.bigSize)
		case "stor":
			tree += p.bigSize // the uploaded copy
		case "s3stor":
			arena = max(arena, p.bigSize) // read back to check
		case "s3par":
			arena = max(arena, p.parSize)
		case "parallel":
			arena = max(arena, int64(p.parN)*p.parSize)
		case "small":
			arena = max(arena, int64(p.smallN)*smallSize)
		}
	}

	if needs&needBig != 0 {
		tree += p.bigSize
	}

	if needs&needPar != 0 {
		tree += int64(p.parN) * p.parSize
	}

	if needs&needSmall != 0 {
		tree += int64(p.smallN) * smallSize
	}

	return needs, arena, tree
}

// startServers starts wharf, then vsftpd where it is installed, then, with
// a store for the S3 group, wharf-s3 and the direct target.
func startServers(ctx context.Context, o options, fx *fixtures, pin pinning, s3 *s3Store) ([]*target, []string, error) {
	ports, err := portRanges(3)
	if err != nil {
		return nil, nil, err
	}

	w, err := startWharf(ctx, o.wharf, fx, pin, ports[0], o.profile)
	if err != nil {
		return nil, nil, err
	}

	targets := []*target{w}
	notes := slices.Clone(w.notes)

	v, why := startVsftpd(ctx, fx, pin, ports[1])
	if v != nil {
		targets = append(targets, v)
		notes = append(notes, v.notes...)
	} else {
		notes = append(notes, why)
	}

	if s3 != nil {
		ws, err := startWharfS3(ctx, o.wharf, fx, pin, ports[2], s3)
		if err != nil {
			for _, t := range targets {
				t.stop()
			}

			return nil, nil, err
		}

		targets = append(targets, ws, &target{name: direct})
		notes = append(notes, ws.notes...)
	}

	return targets, notes, nil
}

// hasS3 reports whether a row of the S3 group is selected.
func hasS3(rows []scenario) bool {
	return slices.ContainsFunc(rows, func(sc scenario) bool { return sc.s3 })
}

// watchServers starts the exit reports (taskstats) that complete the servers'
// CPU time, and says how CPU is counted.
func watchServers(targets []*target, wharfBin string) (*exitWatch, string) {
	comm := filepath.Base(wharfBin)
	if len(comm) > 15 { // the kernel keeps 15 bytes of a command name
		comm = comm[:15]
	}

	w, err := watchExits(comm, filepath.Base(vsftpdPath))
	if err != nil {
		return nil, "server CPU: live threads from /proc/PID/task/*/schedstat plus the cumulative children fields; " +
			"taskstats is unavailable (" + oneLine(err) + "), so vsftpd's session processes, killed with their " +
			"PID namespace, are undercounted"
	}

	for _, t := range targets {
		t.exits = w
	}

	return w, "server CPU: live threads from /proc/PID/task/*/schedstat, plus every process of the server's tree " +
		"that exited during the run, from taskstats exit reports (vsftpd's session processes die with their " +
		"PID namespace and never reach the master's cumulative children fields)"
}

// measure runs one scenario once on one server, with the server's CPU time
// read before and after (the server settled both times: no session process
// left).
func measure(ctx context.Context, b *bench, sc scenario, t *target, round int) record {
	rec := record{Time: time.Now().UTC().Format(time.RFC3339), Round: round, Scenario: sc.id, Server: t.name,
		Unit: sc.unit}

	fail := func(err error) record {
		rec.Error = oneLine(err)

		return rec
	}

	if t.exited() {
		return fail(fmt.Errorf("%s has exited%s", t.name, t.outTail()))
	}

	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()

	if t.pid == 0 { // direct: no server process of ours to settle or watch
		b.win = window{}

		r, err := sc.run(ctx, b, t)
		if err != nil {
			return fail(err)
		}

		rec.Value, rec.Seconds, rec.Bytes, rec.Ops, rec.Detail = r.value, r.seconds, r.bytes, r.ops, r.detail
		rec.Verified = true

		return rec
	}

	if sc.fresh {
		if err := t.restart(ctx); err != nil {
			return fail(fmt.Errorf("restart %s: %w", t.name, err))
		}
	}

	if err := t.settle(ctx); err != nil {
		return fail(err)
	}

	span, err := t.beginCPU()
	if err != nil {
		return fail(err)
	}

	b.win = window{}

	r, err := sc.run(ctx, b, t)
	if err != nil {
		return fail(err)
	}

	if err := t.settle(ctx); err != nil {
		return fail(err)
	}

	cpu, cpuNote, err := span.end()
	if err != nil {
		return fail(err)
	}

	if w := b.win; b.pinned && w.ok && w.elapsed > 0 {
		// The server's CPU of the whole measurement stands in for its CPU
		// inside the windows: logins and verification outside them are small.
		s := w.elapsed.Seconds()
		other := min(max((w.core.tasks-cpu)/s, 0), 1)
		irq, steal := w.core.irq/s, w.core.steal/s
		rec.CoreOther, rec.CoreIRQ, rec.CoreSteal = &other, &irq, &steal
	}

	if cpuNote != "" {
		r.detail = strings.TrimPrefix(r.detail+"; "+cpuNote, "; ")
	}

	rec.Value, rec.Seconds, rec.Bytes, rec.Ops, rec.Detail = r.value, r.seconds, r.bytes, r.ops, r.detail
	rec.CPUSeconds = cpu
	rec.Verified = true

	if sc.cpuUnit != "" && r.work > 0 {
		rec.CPUPer = rec.CPUSeconds / r.work
		rec.CPUUnit = sc.cpuUnit
	}

	return rec
}

func progressLine(r record, round, rounds int) string {
	head := fmt.Sprintf("round %d/%d  %-9s %-7s", round, rounds, r.Scenario, r.Server)
	if r.Error != "" {
		return head + "  ERROR " + r.Error
	}

	line := fmt.Sprintf("%s %12s %-11s", head, number(r.Value), r.Unit)
	if r.CPUUnit != "" {
		line += fmt.Sprintf("  server CPU %s s/%s", number(r.CPUPer), r.CPUUnit)
	}

	if r.Detail != "" {
		line += "  (" + r.Detail + ")"
	}

	return line
}

// summary is the median, min and max of one server's values on one row.
type summary struct {
	n                int
	median, lo, hi   float64
	cpu              float64 // median CPU per unit
	cpuOK            bool
	errors, expected int
}

func summarize(recs []record) summary {
	var vals, cpus []float64

	s := summary{expected: len(recs)}

	for _, r := range recs {
		if r.Error != "" {
			s.errors++

			continue
		}

		vals = append(vals, r.Value)

		if r.CPUUnit != "" {
			cpus = append(cpus, r.CPUPer)
		}
	}

	s.n = len(vals)
	if s.n == 0 {
		return s
	}

	slices.Sort(vals)
	s.median, s.lo, s.hi = median(vals), vals[0], vals[len(vals)-1]

	if len(cpus) > 0 {
		slices.Sort(cpus)
		s.cpu, s.cpuOK = median(cpus), true
	}

	return s
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}

	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func (s summary) cell() string {
	switch {
	case s.expected == 0:
		return "—"
	case s.n == 0:
		return "error"
	case s.n == 1:
		return number(s.median)
	}

	c := fmt.Sprintf("%s (%s–%s)", number(s.median), number(s.lo), number(s.hi))
	if s.errors > 0 {
		c += fmt.Sprintf(", %d failed", s.errors)
	}

	return c
}

func (s summary) cpuCell(unit string) string {
	if !s.cpuOK {
		return "—"
	}

	return number(s.cpu) + " s/" + unit
}

// renderTable writes the report in Markdown: a short header, the table,
// the notes and any errors.
func renderTable(rows []scenario, targets []*target, results map[string]map[string][]record, o options,
	m machine, notes []string, started time.Time,
) string {
	var b strings.Builder

	mode := fmt.Sprintf("%d interleaved rounds (wharf then vsftpd, scenario by scenario)", o.rounds)
	if o.quick {
		mode = fmt.Sprintf("-quick (a smaller subset), %d round(s)", o.rounds)
	}

	fmt.Fprintf(&b, "# wharf vs vsftpd, %s\n\n", started.Format("2006-01-02 15:04:05"))
	fmt.Fprintf(&b, "%s; %s; fixtures on %s; %d CPUs (%s); load average %s at start, %s at end; %s in all.\n\n",
		mode, m.pinning, m.storage, m.ncpu, cpuModel(), m.loadStart, m.loadEnd, m.elapsed.Round(time.Second))
	if p := o.plan(); p.repeat > 1 {
		fmt.Fprintf(&b, "Each transfer row (RETR, STOR, small files, parallel, FTPS) does its work %d times per round "+
			"in one run, and its value is the total over the summed timed windows.\n\n", p.repeat)
	}

	b.WriteString("Cells: median (min–max) over the rounds. MB = 10^6 bytes, GB = 10^9 bytes. " +
		"Server CPU: user + system seconds of the server's processes per unit of work, median. " +
		"Ratio: wharf's median over vsftpd's (for memory, lower is better).\n\n")

	if line := noiseLine(results); line != "" {
		b.WriteString(line + "\n\n")
	}

	var errs []string

	if !slices.ContainsFunc(rows, func(sc scenario) bool { return !sc.s3 }) {
		b.WriteString("No wharf-vsftpd row was selected.\n")
	} else {
		b.WriteString("| scenario | wharf | vsftpd | wharf/vsftpd | wharf CPU | vsftpd CPU |\n")
		b.WriteString("|---|---|---|---|---|---|\n")
	}

	for _, sc := range rows {
		if !sc.s3 {
			errs = append(errs, tableRow(&b, sc, results[sc.id], "wharf", "vsftpd", targets)...)
		}
	}

	if hasS3(rows) && len(targets) > 0 && targets[len(targets)-1].name == direct {
		b.WriteString("\nS3 storage: wharf with its files in a bucket, against the same uploads sent straight to " +
			"the store (see the notes).\n\n")
		b.WriteString("| scenario | wharf on S3 | direct PUT | wharf/direct | wharf CPU | direct CPU |\n")
		b.WriteString("|---|---|---|---|---|---|\n")

		for _, sc := range rows {
			if sc.s3 {
				errs = append(errs, tableRow(&b, sc, results[sc.id], wharfS3, direct, nil)...)
			}
		}

		var peaks []string

		for _, r := range results["s3par"][wharfS3] {
			if r.Error == "" {
				peaks = append(peaks, strings.TrimPrefix(r.Detail, "wharf peak RSS "))
			}
		}

		if len(peaks) > 0 {
			fmt.Fprintf(&b, "\nwharf-s3's peak resident memory (VmHWM) in the parallel row, restarted before each "+
				"round: %s.\n", strings.Join(peaks, ", "))
		}
	}

	b.WriteString("\nNotes:\n\n")

	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}

	if len(errs) > 0 {
		b.WriteString("\nErrors:\n\n")

		for _, e := range errs {
			b.WriteString("- " + e + "\n")
		}
	}

	return b.String()
}

// tableRow writes one row of a table whose columns are the servers a and b,
// and returns the errors of its measurements. targets, when given, say why
// b could not run the row.
func tableRow(out *strings.Builder, sc scenario, byServer map[string][]record, a, b string, targets []*target,
) []string {
	sa, sb := summarize(byServer[a]), summarize(byServer[b])

	ratio := "—"
	if sa.n > 0 && sb.n > 0 && sb.median != 0 {
		ratio = strconv.FormatFloat(sa.median/sb.median, 'f', 2, 64)
	}

	title := fmt.Sprintf("%s (%s)", sc.title, sc.unit)
	if sc.lower {
		title = fmt.Sprintf("%s (%s; lower is better)", sc.title, sc.unit)
	}

	bcell := sb.cell()
	if len(targets) > 1 && sb.expected == 0 {
		if ok, why := sc.applies(targets[1]); !ok {
			bcell = "n/a: " + why
		}
	}

	fmt.Fprintf(out, "| %s | %s | %s | %s | %s | %s |\n", title, sa.cell(), bcell, ratio,
		sa.cpuCell(sc.cpuUnit), sb.cpuCell(sc.cpuUnit))

	var errs []string

	for _, server := range []string{a, b} {
		for _, r := range byServer[server] {
			if r.Error != "" {
				errs = append(errs, fmt.Sprintf("round %d, %s, %s: %s", r.Round, sc.id, server, r.Error))
			}
		}
	}

	return errs
}

// noiseLine says how much other work shared the server's core during the
// measurements: the machine may be shared.
func noiseLine(results map[string]map[string][]record) string {
	var other, irq, steal []float64

	for _, byServer := range results {
		for _, recs := range byServer {
			for _, r := range recs {
				if r.CoreOther != nil {
					other = append(other, *r.CoreOther)
					irq = append(irq, *r.CoreIRQ)
					steal = append(steal, *r.CoreSteal)
				}
			}
		}
	}

	if len(other) == 0 {
		return ""
	}

	share := func(v []float64) string {
		slices.Sort(v)

		return fmt.Sprintf("a median %.0f%% (at most %.0f%%)", 100*median(v), 100*v[len(v)-1])
	}

	return fmt.Sprintf("Noise on the server's core during the timed windows: other processes used %s of it, "+
		"interrupts and softirqs (mostly the loopback traffic) %s, the hypervisor stole %s. Per measurement: "+
		"server_core_other, server_core_irq and server_core_steal in raw.jsonl.", share(other), share(irq), share(steal))
}

// number writes a figure with thousands separators and about three
// significant digits: 5,113 · 858 · 12.3 · 0.112.
func number(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return thousands(math.Round(v))
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a == 0:
		return "0"
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func thousands(v float64) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', 0, 64)

	var b strings.Builder

	if v < 0 {
		b.WriteByte('-')
	}

	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}

		b.WriteRune(c)
	}

	return b.String()
}

// machine describes where the run happened: machine.txt.
type machine struct {
	ncpu             int
	pinning, storage string
	wharf, vsftpd    string
	loadStart        string
	loadEnd          string
	elapsed          time.Duration
}

func (m machine) describe(args []string) string {
	var b strings.Builder

	line := func(k, v string) { fmt.Fprintf(&b, "%-22s %s\n", k+":", v) }

	line("command", strings.Join(append([]string{"bench"}, args...), " "))
	line("nproc", strconv.Itoa(m.ncpu))
	line("cpu", cpuModel())
	line("kernel", readTrim("/proc/sys/kernel/osrelease"))
	line("kernel build", readTrim("/proc/sys/kernel/version"))
	line("memory", memTotal())
	line("go (bench built with)", runtime.Version())
	line("wharf", m.wharf)
	line("vsftpd", m.vsftpd)
	line("fixtures", m.storage)
	line("pinning", m.pinning)
	line("load average, start", m.loadStart)
	line("load average, end", m.loadEnd)
	line("duration", m.elapsed.Round(time.Second).String())
	b.WriteString("\nThe machine may be shared: the load averages show how busy it was.\n")

	return b.String()
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}

	return strings.TrimSpace(string(b))
}

func loadAverage() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}

	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	return procField("/proc/cpuinfo", "model name")
}

func memTotal() string {
	return procField("/proc/meminfo", "MemTotal")
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}

	return "unknown"
}

// profileAll takes a CPU profile of wharf for each row that has a CPU
// column, repeating the row's scenario while the profile runs, and writes
// cpu-<id>.pprof and, when the go tool is at hand, cpu-<id>.txt (pprof -top,
// by flat then by cumulative time).
// It returns notes for the report.
func profileAll(ctx context.Context, b *bench, rows []scenario, w *target, dir string, o options,
	stderr io.Writer,
) []string {
	if w.admin == "" {
		return []string{"profiles: wharf's admin listener is off"}
	}

	var notes []string

	for _, sc := range rows {
		if sc.cpuUnit == "" || sc.s3 {
			continue
		}

		fmt.Fprintf(stderr, "profile %-9s wharf, %s...\n", sc.id, o.profileFor)

		runs, err := profileRow(ctx, b, sc, w, dir, o)
		if err != nil {
			notes = append(notes, fmt.Sprintf("profile %s: %s", sc.id, oneLine(err)))

			continue
		}

		notes = append(notes, fmt.Sprintf("profile %s: cpu-%s.pprof (the scenario ran %d times in %s)",
			sc.id, sc.id, runs, o.profileFor))
	}

	return notes
}

func profileRow(ctx context.Context, b *bench, sc scenario, w *target, dir string, o options) (int, error) {
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", w.admin, int(o.profileFor.Seconds()))

	type reply struct {
		body []byte
		err  error
	}

	done := make(chan reply, 1)

	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil) //nolint:gosec // wharf's admin listener, on loopback
		if err != nil {
			done <- reply{err: err}

			return
		}

		resp, err := http.DefaultClient.Do(req) //nolint:gosec // wharf's admin listener, on loopback
		if err != nil {
			done <- reply{err: err}

			return
		}
		defer resp.Body.Close()

		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}

		done <- reply{body: body, err: err}
	}()

	runs := 0

	var got reply

loop:
	for range 100000 {
		select {
		case got = <-done:
			break loop
		default:
		}

		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		_, err := sc.run(rctx, b, w)

		cancel()

		if err != nil {
			got = <-done

			return runs, err
		}

		runs++
	}

	if got.body == nil && got.err == nil {
		got = <-done
	}

	if got.err != nil {
		return runs, got.err
	}

	prof := filepath.Join(dir, "cpu-"+sc.id+".pprof")
	if err := os.WriteFile(prof, got.body, 0o644); err != nil { //nolint:gosec // results are meant to be read
		return runs, fmt.Errorf("write profile: %w", err)
	}

	if goTool, err := exec.LookPath("go"); err == nil {
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()

		var text []byte

		for _, sort := range []string{"-flat", "-cum"} {
			top, err := exec.CommandContext(tctx, goTool, "tool", "pprof", "-top", sort, "-nodecount=40", o.wharf, prof).Output()
			if err != nil {
				break
			}

			text = append(text, top...)
			text = append(text, '\n')
		}

		if len(text) > 0 {
			_ = os.WriteFile(filepath.Join(dir, "cpu-"+sc.id+".txt"), text, 0o644) //nolint:gosec // results are meant to be read
		}
	}

	return runs, nil
}
