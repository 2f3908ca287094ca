// Command bench measures wharf against its peers (vsftpd, pure-ftpd and
// ProFTPD) on loopback, as issues 5 and 14 ask: the same scenarios for every
// server, interleaved round by round, servers and client pinned to different
// cores, every transferred byte checked with SHA-256, server CPU per unit of
// work beside every figure. It prints Markdown tables of medians with their
// spread, the rows and the curves of how cost grows, and writes
// bench/results/<date>/ with table.md, raw.jsonl and machine.txt.
//
//	go run ./bench -wharf bin/wharf -rounds 5    # make bench
//	go run ./bench -wharf bin/wharf -quick       # make bench-quick
//
// See bench/README.md for how to read the tables.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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

	"wharf/internal/procstat"
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
	disk       string
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
	pin   pinning      // how servers are started on their core
	wharf string       // the wharf binary, absolute

	pinned bool // the server runs alone on core 0, as far as taskset can make it
}

// record is one measurement: one line of raw.jsonl.
type record struct {
	Time       string  `json:"time"`
	Round      int     `json:"round"`
	Scenario   string  `json:"scenario"`
	Curve      string  `json:"curve,omitempty"` // the curve and the point, for the curves' rows
	Point      string  `json:"point,omitempty"`
	Server     string  `json:"server"`
	Storage    string  `json:"storage"` // the tree the server served: tmpfs, or disk
	Value      float64 `json:"value"`
	Unit       string  `json:"unit"`
	Seconds    float64 `json:"seconds,omitempty"` // the timed window
	Bytes      int64   `json:"bytes,omitempty"`
	Ops        int64   `json:"ops,omitempty"`
	CPUSeconds float64 `json:"server_cpu_seconds"`
	CPUPer     float64 `json:"server_cpu_per,omitempty"`
	CPUUnit    string  `json:"server_cpu_unit,omitempty"` // CPUPer is CPU seconds per this
	// PeakKiB is how far the peak RSS of the server's processes rose over
	// one listing, for the LIST rows.
	PeakKiB *float64 `json:"peak_rss_rise_kib,omitempty"`
	// Noise, as fractions of the timed windows on the server's core (core 0,
	// when pinned): other processes, interrupt and softirq work (much of it
	// the loopback traffic itself), and hypervisor steal.
	CoreOther *float64 `json:"server_core_other,omitempty"`
	CoreIRQ   *float64 `json:"server_core_irq,omitempty"`
	CoreSteal *float64 `json:"server_core_steal,omitempty"`
	// DiskDD is dd's MB/s for a durable write of the same size into the
	// same folder, measured before each upload of the stor-disk row.
	DiskDD   *float64 `json:"dd_mb_s,omitempty"`
	Verified bool     `json:"verified"`
	Detail   string   `json:"detail,omitempty"`
	Skipped  string   `json:"skipped,omitempty"` // why the server did not run the row
	Error    string   `json:"error,omitempty"`
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)

	var o options

	var ids []string
	for _, sc := range scenarios(fullPlan) {
		ids = append(ids, sc.id)
	}

	only := fs.String("only", "", "run only the scenarios whose id or title matches this `regexp` (ids: "+
		strings.Join(ids, " ")+")")
	fs.StringVar(&o.wharf, "wharf", "bin/wharf", "wharf `binary` to measure (make build writes bin/wharf)")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved `rounds` (each runs every scenario on every server)")
	fs.BoolVar(&o.quick, "quick", false, "a subset, smaller (RETR 256 MiB, 500 small files, anonymous sessions, "+
		"idle memory, LIST, STOR to disk, the curves' smaller points), one round unless -rounds is given")
	fs.StringVar(&o.out, "out", filepath.Join("bench", "results"), "`folder` that receives the run's results folder")
	fs.StringVar(&o.disk, "disk", "/var/tmp", "`folder` on a disk file system for the disk rows (not a tmpfs)")
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
	m := machine{ncpu: runtime.NumCPU(), loadStart: procstat.LoadAverage()}

	var notes []string

	if note := raiseFileLimit(); note != "" {
		notes = append(notes, note)
	}

	pin := setUpPinning(ctx, m.ncpu)
	if pin.taskset != "" {
		runtime.GOMAXPROCS(1)
	}

	m.pinning = pin.note

	needs, lists, arenaSize, treeSize := sizes(p, rows)
	base, storage := tempBase(treeSize)
	m.storage = storage

	fmt.Fprintf(stderr, "bench: %s; %s\n", pin.note, storage)
	fmt.Fprintf(stderr, "bench: writing fixtures (%s) and SHA-256 sums...\n", human(treeSize))

	b := &bench{plan: p, arena: make([]byte, arenaSize), pinned: pin.taskset != "", pin: pin}

	if b.wharf, err = filepath.Abs(o.wharf); err != nil {
		return fmt.Errorf("-wharf: %w", err)
	}

	for i := 0; i < len(b.arena); i += 4096 { // fault the pages in before any timed window
		b.arena[i] = 1
	}

	fx, err := makeFixtures(base, p, needs, lists, b.arena)
	if err != nil {
		return err
	}
	defer func() {
		if err := fx.remove(); err != nil {
			fmt.Fprintln(stderr, "bench:", err)
		}
	}()

	b.fx = fx

	if needs&needDisk != 0 {
		where, err := fx.makeDiskTree(o.disk, p.bigSize)
		if err != nil {
			notes = append(notes, "disk rows skipped: "+oneLine(err))
			rows = slices.DeleteFunc(rows, func(sc scenario) bool { return sc.disk })
		} else {
			m.disk = where
			notes = append(notes, "disk rows: the server serves a second tree, in "+where+", restarted on it "+
				"before the row and back on tmpfs after; uploads there reach the disk as each server writes them "+
				"(wharf syncs each upload before its 226)")
		}
	}

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

	exits, cpuNote := watchServers(targets)
	if exits != nil {
		defer exits.Close()
	}

	notes = append(notes, cpuNote)

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

	m.loadEnd = procstat.LoadAverage()
	m.elapsed = time.Since(started)

	for _, t := range targets {
		m.servers = append(m.servers, t.name)
	}

	if n := ddNote(results, targets); n != "" {
		notes = append(notes, n)
	}

	table := renderReport(rows, targets, results, o, m, notes, started)
	if err := os.WriteFile(filepath.Join(dir, "table.md"), []byte(table), 0o644); err != nil { //nolint:gosec // results are meant to be read
		return fmt.Errorf("results: %w", err)
	}

	if err := os.WriteFile(filepath.Join(dir, "machine.txt"), []byte(m.describe(args, notes)), 0o644); err != nil { //nolint:gosec // results are meant to be read
		return fmt.Errorf("results: %w", err)
	}

	fmt.Fprint(stdout, table)
	fmt.Fprintf(stdout, "\nResults written to %s\n", dir)

	if results.failed() {
		return errors.New("some measurements failed (see the table's errors)")
	}

	return nil
}

// raiseFileLimit sets this process's RLIMIT_NOFILE to its hard limit, which
// the servers inherit: the curves hold 10,000 sessions open. It returns a
// note when that fails.
func raiseFileLimit() string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return "RLIMIT_NOFILE: " + oneLine(err)
	}

	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return "RLIMIT_NOFILE could not be raised to its hard limit: " + oneLine(err)
	}

	return ""
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

// results are the measurements by row id and server name, and why a server
// skipped a row.
type results struct {
	recs    map[string]map[string][]record
	skipped map[string]map[string]string
}

func (r results) failed() bool {
	for _, byServer := range r.recs {
		for _, recs := range byServer {
			for _, rec := range recs {
				if rec.Error != "" {
					return true
				}
			}
		}
	}

	return false
}

// measureRounds runs every row on every server, round after round (the
// servers one after the other for each row), writes each measurement to
// rawPath as it comes and returns them.
func measureRounds(ctx context.Context, b *bench, rows []scenario, targets []*target, rounds int, rawPath string,
	stderr io.Writer,
) (results, error) {
	res := results{recs: map[string]map[string][]record{}, skipped: map[string]map[string]string{}}

	raw, err := os.Create(rawPath)
	if err != nil {
		return res, fmt.Errorf("results: %w", err)
	}
	defer raw.Close()

	enc := json.NewEncoder(raw)

	for round := 1; round <= rounds; round++ {
		for _, sc := range rows {
			for _, t := range targets {
				if err := ctx.Err(); err != nil {
					return res, fmt.Errorf("interrupted: %w", err)
				}

				if sc.s3 == notS3(t) {
					continue // the S3 group's rows and servers are apart from the others
				}

				var rec record

				ok, why := sc.applies(t)
				if !ok && why == "" {
					continue // not one of this row's servers
				}

				if ok {
					rec = measure(ctx, b, sc, t, round)
				} else {
					rec = record{Time: time.Now().UTC().Format(time.RFC3339), Round: round, Scenario: sc.id,
						Curve: sc.curve, Point: sc.point, Server: t.name, Unit: sc.unit, Skipped: why}
				}

				if err := enc.Encode(rec); err != nil {
					return res, fmt.Errorf("raw.jsonl: %w", err)
				}

				if rec.Skipped != "" {
					if res.skipped[sc.id] == nil {
						res.skipped[sc.id] = map[string]string{}
					}

					res.skipped[sc.id][t.name] = rec.Skipped
				} else {
					if res.recs[sc.id] == nil {
						res.recs[sc.id] = map[string][]record{}
					}

					res.recs[sc.id][t.name] = append(res.recs[sc.id][t.name], rec)
				}

				fmt.Fprintln(stderr, progressLine(rec, round, rounds))
			}
		}
	}

	if err := raw.Close(); err != nil {
		return res, fmt.Errorf("raw.jsonl: %w", err)
	}

	return res, nil
}

// sizes returns the fixtures the rows read, the folder sizes they list, the
// client buffer they need and the bytes the tree takes on tmpfs (with room
// for one upload).
func sizes(p plan, rows []scenario) (needs need, lists []int, arena, tree int64) {
	arena = 16 << 20 // fixture scratch
	tree = 64 << 20

	for _, sc := range rows {
		needs |= sc.needs

		if sc.list > 0 && !slices.Contains(lists, sc.list) {
			lists = append(lists, sc.list)
			arena = max(arena, int64(listBuffer(sc.list)))
			tree += int64(sc.list) * 4096 // an inode and a directory entry each, generously
		}

		switch sc.id {
		case "retr", "ftps", "http":
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

	if needs&needCurvePar != 0 {
		tree += int64(p.cparN) * p.cparSize
		arena = max(arena, int64(p.cparN)*p.cparSize)
	}

	if needs&needSmall != 0 {
		tree += int64(p.smallN) * smallSize
	}

	return needs, lists, arena, tree
}

// startServers starts wharf, then every peer it can, then, with a store for
// the S3 group, wharf-s3 and the direct target.
func startServers(ctx context.Context, o options, fx *fixtures, pin pinning, s3 *s3Store) ([]*target, []string, error) {
	spans := []int{passiveSpan}
	for _, p := range peers {
		spans = append(spans, p.span)
	}

	spans = append(spans, passiveSpan) // wharf-s3

	ports, err := portRanges(spans...)
	if err != nil {
		return nil, nil, err
	}

	w, err := startWharf(ctx, o.wharf, fx, pin, ports[0], o.profile)
	if err != nil {
		return nil, nil, err
	}

	targets := []*target{w}
	notes := slices.Clone(w.notes)

	more, why := startPeers(ctx, fx, pin, ports[1:len(ports)-1])
	targets = append(targets, more...)
	notes = append(notes, why...)

	if s3 != nil {
		ws, err := startWharfS3(ctx, o.wharf, fx, pin, ports[len(ports)-1], s3)
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
func watchServers(targets []*target) (*procstat.Exits, string) {
	var comms []string
	for _, t := range targets {
		if t.comm != "" {
			comms = append(comms, t.comm)
		}
	}

	w, err := procstat.WatchExits(comms...)
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
	rec := record{Time: time.Now().UTC().Format(time.RFC3339), Round: round, Scenario: sc.id, Curve: sc.curve,
		Point: sc.point, Server: t.name, Storage: "tmpfs", Unit: sc.unit}

	fail := func(err error) record {
		rec.Error = oneLine(err)

		return rec
	}

	if t.exited() {
		return fail(fmt.Errorf("%s has exited%s", t.name, t.outTail()))
	}

	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
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

	s := b.setupFor(sc)
	if sc.disk {
		rec.Storage = "disk"
	}

	if err := t.serve(ctx, s); err != nil {
		return fail(fmt.Errorf("restart %s on the %s tree: %w", t.name, rec.Storage, err))
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

	if r.cpuOwn {
		cpu = r.cpu
	}

	if w := b.win; b.pinned && w.ok && w.elapsed > 0 {
		// The server's CPU of the whole measurement stands in for its CPU
		// inside the windows: logins and verification outside them are small.
		s := w.elapsed.Seconds()
		other := min(max((w.core.Tasks.Seconds()-cpu)/s, 0), 1)
		irq, steal := w.core.IRQ.Seconds()/s, w.core.Steal.Seconds()/s
		rec.CoreOther, rec.CoreIRQ, rec.CoreSteal = &other, &irq, &steal
	}

	if cpuNote != "" {
		r.detail = strings.TrimPrefix(r.detail+"; "+cpuNote, "; ")
	}

	rec.Value, rec.Seconds, rec.Bytes, rec.Ops, rec.Detail = r.value, r.seconds, r.bytes, r.ops, r.detail
	rec.CPUSeconds = cpu
	rec.Verified = true

	if r.peakOK {
		rec.PeakKiB = &r.peakKiB
	}

	if r.ddOK {
		rec.DiskDD = &r.dd
	}

	if sc.cpuUnit != "" && r.work > 0 {
		rec.CPUPer = rec.CPUSeconds / r.work
		rec.CPUUnit = sc.cpuUnit
	}

	return rec
}

// setupFor is what a server must serve for the row: the tree on disk for a
// disk row, else the one on tmpfs, and TLS for the FTPS row.
func (b *bench) setupFor(sc scenario) setup {
	s := setup{root: b.fx.root, tls: sc.tls}
	if sc.disk {
		s.root = b.fx.diskRoot
	}

	return s
}

func progressLine(r record, round, rounds int) string {
	id := r.Scenario
	head := fmt.Sprintf("round %d/%d  %-10s %-9s", round, rounds, id, r.Server)

	switch {
	case r.Skipped != "":
		return head + "  skipped: " + r.Skipped
	case r.Error != "":
		return head + "  ERROR " + r.Error
	}

	line := fmt.Sprintf("%s %12s %-11s", head, number(r.Value), r.Unit)
	if r.CPUUnit != "" {
		line += fmt.Sprintf("  server CPU %s s/%s", number(r.CPUPer), r.CPUUnit)
	}

	if r.PeakKiB != nil {
		line += fmt.Sprintf("  peak RSS +%s KiB", number(*r.PeakKiB))
	}

	if r.Detail != "" {
		line += "  (" + r.Detail + ")"
	}

	return line
}

// machine describes where the run happened: machine.txt.
type machine struct {
	ncpu             int
	pinning, storage string
	disk             string // the disk rows' tree, "" without
	servers          []string
	loadStart        string
	loadEnd          string
	elapsed          time.Duration
}

func (m machine) describe(args, notes []string) string {
	var b strings.Builder

	line := func(k, v string) { fmt.Fprintf(&b, "%-22s %s\n", k+":", v) }

	line("command", strings.Join(append([]string{"bench"}, args...), " "))
	line("nproc", strconv.Itoa(m.ncpu))
	line("cpu", procstat.CPUModel())
	line("kernel", procstat.KernelRelease())
	line("kernel build", kernelVersion())
	line("memory", procstat.Field("/proc/meminfo", "MemTotal"))
	line("go (bench built with)", runtime.Version())
	line("servers", strings.Join(m.servers, ", "))
	line("fixtures", m.storage)
	line("disk rows", m.disk)
	line("pinning", m.pinning)
	line("load average, start", m.loadStart)
	line("load average, end", m.loadEnd)
	line("duration", m.elapsed.Round(time.Second).String())
	b.WriteString("\nThe machine may be shared: the load averages show how busy it was.\n\nHow each server ran:\n\n")

	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}

	return b.String()
}

// kernelVersion is the running kernel's build string (/proc/sys/kernel/version).
func kernelVersion() string {
	b, err := os.ReadFile("/proc/sys/kernel/version")
	if err != nil {
		return "unknown"
	}

	return strings.TrimSpace(string(b))
}

func oneLine(err error) string {
	if err == nil {
		return ""
	}

	return strings.Join(strings.Fields(err.Error()), " ")
}
