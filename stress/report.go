package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"wharf/internal/procstat"
)

// check is one bounded figure of a scenario, or a figure for the record (info).
type check struct {
	name   string
	figure string
	bound  string
	ok     bool
	info   bool
}

// result collects a scenario's checks as it runs, printing each at once.
type result struct {
	sc      scenario
	checks  []check
	took    time.Duration
	skipped string // why the scenario could not run here (a tool missing); "" when it ran
}

// check records and prints one figure against its bound.
func (r *result) check(name string, ok bool, bound, format string, args ...any) {
	c := check{name: name, figure: fmt.Sprintf(format, args...), bound: bound, ok: ok}
	r.checks = append(r.checks, c)
	say("   %s  %s: %s (bound: %s)\n", verdict(ok), name, c.figure, bound)
}

// note records and prints a figure that has no bound.
func (r *result) note(name, format string, args ...any) {
	c := check{name: name, figure: fmt.Sprintf(format, args...), ok: true, info: true}
	r.checks = append(r.checks, c)
	say("   info  %s: %s\n", name, c.figure)
}

// skip records that the scenario cannot run on this machine, and why: it
// neither passes nor fails.
func (r *result) skip(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
	say("   SKIP  %s\n", r.skipped)
}

func (r *result) passed() bool {
	if r.skipped != "" {
		return true
	}

	bounded := 0
	for _, c := range r.checks {
		if !c.ok {
			return false
		}

		if !c.info {
			bounded++
		}
	}

	return bounded > 0
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}

	return "FAIL"
}

// printSummary prints one line per scenario and reports whether any failed.
func printSummary(results []*result, total time.Duration) bool {
	say("\n== Summary (%s)\n", total.Round(time.Second))

	failed := false
	for _, r := range results {
		if r.skipped != "" {
			say("   SKIP  %2d. %s: %s\n", r.sc.num, r.sc.title, r.skipped)

			continue
		}

		say("   %s  %2d. %s (%s)\n", verdict(r.passed()), r.sc.num, r.sc.title, r.took.Round(100*time.Millisecond))
		if !r.passed() {
			failed = true
			for _, c := range r.checks {
				if !c.ok {
					say("          FAIL %s: %s (bound: %s)\n", c.name, c.figure, c.bound)
				}
			}
		}
	}

	return failed
}

// machine describes where the figures were measured.
type machine struct {
	date   time.Time
	cpus   int
	model  string
	kernel string
	goVer  string
	wharf  string
	load   string // load averages at the start, from /proc/loadavg
}

func describeMachine(ctx context.Context, bin string) machine {
	m := machine{date: time.Now().UTC(), cpus: runtime.NumCPU(), goVer: runtime.Version()}
	m.wharf = version(ctx, bin)

	m.model = procstat.CPUModel()
	m.kernel = "Linux " + procstat.KernelRelease()
	m.load = procstat.LoadAverage()

	return m
}

func (m machine) String() string {
	return fmt.Sprintf("%d CPUs (%s), %s, %s, load average %s", m.cpus, m.model, m.kernel, m.goVer, m.load)
}

// writeMarkdown writes the summary table.
func writeMarkdown(path string, results []*result, m machine, total time.Duration, partial bool) error {
	var b strings.Builder

	b.WriteString("# wharf under abuse: current figures\n\n")
	b.WriteString("Written by `make stress` (`go run ./stress -wharf bin/wharf`), which starts the real wharf binary and\n")
	b.WriteString("attacks it on loopback only (127.0.0.1, and 127.0.0.2 and up as other client addresses). Each row is one\n")
	b.WriteString("figure measured in that run and the bound it must meet; the bounds are those of issues 4, 12 and 15. The package\n")
	b.WriteString("comment of `stress/doc.go` explains each scenario and how it measures.\n\n")
	fmt.Fprintf(&b, "- Date: %s\n", m.date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Machine: %d CPUs (nproc), %s, %s\n", m.cpus, m.model, m.kernel)
	fmt.Fprintf(&b, "- wharf %s, built with %s\n", m.wharf, m.goVer)
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min): %s at the start, %s at the end; latency figures include other work on the machine\n", m.load, procstat.LoadAverage())
	fmt.Fprintf(&b, "- Total run time: %s\n", total.Round(time.Second))

	if partial {
		b.WriteString("- Partial run: only the scenarios below were selected (-run).\n")
	}

	passed, skipped := 0, 0
	for _, r := range results {
		switch {
		case r.skipped != "":
			skipped++
		case r.passed():
			passed++
		}
	}

	fmt.Fprintf(&b, "- Result: %d of %d scenarios PASS", passed, len(results)-skipped)
	if skipped > 0 {
		fmt.Fprintf(&b, ", %d skipped", skipped)
	}

	b.WriteString("\n\n")
	b.WriteString("| # | Scenario | Check | Figure | Bound | Result |\n|---|---|---|---|---|---|\n")

	for _, r := range results {
		if r.skipped != "" {
			fmt.Fprintf(&b, "| %d | %s | skipped | %s | | SKIP |\n", r.sc.num, cell(r.sc.title), cell(r.skipped))

			continue
		}

		for i, c := range r.checks {
			num, title := "", ""
			if i == 0 {
				num = fmt.Sprint(r.sc.num)
				title = fmt.Sprintf("%s (%s)", r.sc.title, r.took.Round(time.Second))
			}

			bound, res := c.bound, verdict(c.ok)
			if c.info {
				bound, res = "(none: for the record)", "info"
			}

			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", num, cell(title), cell(c.name), cell(c.figure), cell(bound), res)
		}
	}

	return os.WriteFile(path, []byte(b.String()), 0o644) //nolint:gosec // the summary is meant to be read
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Statistics over latency samples.

// pct is the p-th percentile (0-100) by nearest rank; 0 for no samples.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}

	s := slices.Clone(ds)
	slices.Sort(s)

	i := int(float64(len(s))*p/100+0.999999) - 1
	i = max(0, min(i, len(s)-1))

	return s[i]
}

// spread summarises samples as "min / p50 / p99 / max".
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}

	return fmt.Sprintf("min %s, p50 %s, p99 %s, max %s", ms(pct(ds, 0)), ms(pct(ds, 50)), ms(pct(ds, 99)), ms(pct(ds, 100)))
}

// ms formats a duration for the tables: "12 µs", "0.42 ms", "37 ms", "2.31 s".
func ms(d time.Duration) string {
	switch {
	case d < 100*time.Microsecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

// mib formats a byte count in MiB.
func mib(n int64) string {
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}
