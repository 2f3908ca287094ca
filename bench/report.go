package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"wharf/internal/procstat"
)

// The report: a short header, the rows (one line per server under each
// row's title), one table per curve, the notes and any errors.

// spread is the median, min and max of a set of figures.
type spread struct {
	n              int
	median, lo, hi float64
}

func spreadOf(vals []float64) spread {
	if len(vals) == 0 {
		return spread{}
	}

	v := slices.Sorted(slices.Values(vals))

	return spread{n: len(v), median: median(v), lo: v[0], hi: v[len(v)-1]}
}

// cell writes "median (min–max)", or one number for one round.
func (s spread) cell(unit string) string {
	switch {
	case s.n == 0:
		return ""
	case s.n == 1 || s.lo == s.hi:
		return number(s.median) + unit
	default:
		return fmt.Sprintf("%s%s (%s–%s)", number(s.median), unit, number(s.lo), number(s.hi))
	}
}

// summary is one server's figures on one row.
type summary struct {
	value, cpu, peak spread
	cpuUnit          string
	errors, expected int
	skipped          string
}

func summarize(recs []record, skipped string) summary {
	var vals, cpus, peaks []float64

	s := summary{expected: len(recs), skipped: skipped}

	for _, r := range recs {
		if r.Error != "" {
			s.errors++

			continue
		}

		vals = append(vals, r.Value)

		if r.CPUUnit != "" {
			cpus = append(cpus, r.CPUPer)
			s.cpuUnit = r.CPUUnit
		}

		if r.PeakKiB != nil {
			peaks = append(peaks, *r.PeakKiB)
		}
	}

	s.value, s.cpu, s.peak = spreadOf(vals), spreadOf(cpus), spreadOf(peaks)

	return s
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}

	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// cell is the value's cell: the figures, "n/a: why", "error" or "—".
func (s summary) cell() string {
	switch {
	case s.skipped != "":
		return "n/a: " + s.skipped
	case s.expected == 0:
		return "—"
	case s.value.n == 0:
		return "error"
	}

	c := s.value.cell("")
	if s.errors > 0 {
		c += fmt.Sprintf(", %d failed", s.errors)
	}

	return c
}

func (s summary) cpuCell() string {
	if s.cpu.n == 0 {
		return "—"
	}

	return s.cpu.cell(" s/" + s.cpuUnit)
}

// renderReport writes the report in Markdown.
func renderReport(rows []scenario, targets []*target, res results, o options, m machine, notes []string,
	started time.Time,
) string {
	var b strings.Builder

	var names []string
	for _, t := range targets {
		names = append(names, t.name)
	}

	mode := fmt.Sprintf("%d interleaved rounds (the servers one after the other, row by row)", o.rounds)
	if o.quick {
		mode = fmt.Sprintf("-quick (a smaller subset), %d round(s)", o.rounds)
	}

	fmt.Fprintf(&b, "# %s, %s\n\n", strings.Join(names, " vs "), started.Format("2006-01-02 15:04:05"))
	fmt.Fprintf(&b, "%s; %s; fixtures on %s; %d CPUs (%s); load average %s at start, %s at end; %s in all.\n\n",
		mode, m.pinning, m.storage, m.ncpu, procstat.CPUModel(), m.loadStart, m.loadEnd, m.elapsed.Round(time.Second))

	if p := o.plan(); p.repeat > 1 {
		fmt.Fprintf(&b, "Each transfer row (RETR, STOR, small files, parallel, FTPS and the parallel curve) does its "+
			"work %d times per round in one run, and its value is the total over the summed timed windows.\n\n", p.repeat)
	}

	b.WriteString("Cells: median (min–max) over the rounds. MB = 10^6 bytes, GB = 10^9 bytes. " +
		"Server CPU: user + system seconds of the server's processes per unit of work, median (min–max). " +
		"Ratio: the row's first server's median (wharf's; wharf-s3's in the S3 table) over this server's (for " +
		"memory, lower is better); on the first server's line, over the best of the others'.\n\n")

	if line := noiseLine(res); line != "" {
		b.WriteString(line + "\n\n")
	}

	var plain, curved, s3 []scenario

	for _, sc := range rows {
		switch {
		case sc.s3:
			s3 = append(s3, sc)
		case sc.curve == "":
			plain = append(plain, sc)
		default:
			curved = append(curved, sc)
		}
	}

	if len(plain) > 0 {
		renderRows(&b, plain, targets, res)
	}

	if len(s3) > 0 {
		b.WriteString("\n## S3 storage\n\nwharf with its files in a bucket (wharf-s3), against the same uploads " +
			"sent straight to the store (direct; see the notes).\n\n")
		renderRows(&b, s3, targets, res)

		var peaks []string

		for _, r := range res.recs["s3par"][wharfS3] {
			if r.Error == "" {
				peaks = append(peaks, strings.TrimPrefix(r.Detail, "wharf peak RSS "))
			}
		}

		if len(peaks) > 0 {
			fmt.Fprintf(&b, "\nwharf-s3's peak resident memory (VmHWM) in the parallel row, restarted before each "+
				"round: %s.\n", strings.Join(peaks, ", "))
		}
	}

	if len(curved) > 0 {
		b.WriteString("\n## How cost grows\n\n")
		renderCurves(&b, curved, targets, res)
	}

	b.WriteString("\nNotes:\n\n")

	for _, n := range notes {
		b.WriteString("- " + n + "\n")
	}

	var errs []string

	for _, sc := range rows {
		for _, t := range targets {
			for _, r := range res.recs[sc.id][t.name] {
				if r.Error != "" {
					errs = append(errs, fmt.Sprintf("round %d, %s, %s: %s", r.Round, sc.id, t.name, r.Error))
				}
			}
		}
	}

	if len(errs) > 0 {
		b.WriteString("\nErrors:\n\n")

		for _, e := range errs {
			b.WriteString("- " + e + "\n")
		}
	}

	return b.String()
}

// fullTitle is a row's title with its unit.
func (sc scenario) fullTitle() string {
	if sc.lower {
		return fmt.Sprintf("%s (%s; lower is better)", sc.title, sc.unit)
	}

	return fmt.Sprintf("%s (%s)", sc.title, sc.unit)
}

// renderRows writes the rows' table: under each row's title, one line per
// server with its figures, its CPU per unit and wharf's ratio to it.
func renderRows(b *strings.Builder, rows []scenario, targets []*target, res results) {
	b.WriteString("| row | server | median (min–max) | server CPU per unit | ratio |\n")
	b.WriteString("|---|---|---|---|---|\n")

	for _, sc := range rows {
		sums := make([]summary, len(targets))
		for i, t := range targets {
			sums[i] = summarize(res.recs[sc.id][t.name], res.skipped[sc.id][t.name])
		}

		lead := slices.IndexFunc(targets, func(t *target) bool { return takesPart(res, sc.id, t.name) })

		for i, t := range targets {
			if !takesPart(res, sc.id, t.name) {
				continue
			}

			title := ""
			if i == lead {
				title = sc.fullTitle()
			}

			fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", title, t.name, sums[i].cell(), sums[i].cpuCell(),
				ratioCell(sc, targets, sums, lead, i))
		}
	}
}

// takesPart reports whether the server measured the row, or was skipped
// with a reason: servers with no part in a row have no line under it.
func takesPart(res results, id, server string) bool {
	_, measured := res.recs[id][server]
	_, skipped := res.skipped[id][server]

	return measured || skipped
}

// ratioCell is the lead server's median over server i's; on the lead's own
// line, over the best of the others'.
func ratioCell(sc scenario, targets []*target, sums []summary, lead, i int) string {
	w := sums[lead].value
	if w.n == 0 {
		return ""
	}

	if i != lead {
		if v := sums[i].value; v.n > 0 && v.median != 0 {
			return strconv.FormatFloat(w.median/v.median, 'f', 2, 64)
		}

		return ""
	}

	best := -1

	for j := range sums {
		v := sums[j].value
		if j == lead || v.n == 0 || v.median == 0 {
			continue
		}

		if best < 0 || (!sc.lower && v.median > sums[best].value.median) || (sc.lower && v.median < sums[best].value.median) {
			best = j
		}
	}

	if best < 0 {
		return ""
	}

	return fmt.Sprintf("%s vs the best of the others (%s)",
		strconv.FormatFloat(w.median/sums[best].value.median, 'f', 2, 64), targets[best].name)
}

// renderCurves writes one table per curve: a column per point, a line per
// server (and one for its CPU per unit, and one for the peak RSS rise where
// the curve measures it), and the largest change from the reference point.
func renderCurves(b *strings.Builder, rows []scenario, targets []*target, res results) {
	var order []string

	byCurve := map[string][]scenario{}

	for _, sc := range rows {
		if _, ok := byCurve[sc.curve]; !ok {
			order = append(order, sc.curve)
		}

		byCurve[sc.curve] = append(byCurve[sc.curve], sc)
	}

	for _, name := range order {
		points := byCurve[name]

		ref := 0
		for i, sc := range points {
			if sc.ref {
				ref = i
			}
		}

		fmt.Fprintf(b, "**%s**\n\n| server |", points[0].fullTitle())

		for _, sc := range points {
			fmt.Fprintf(b, " %s |", sc.point)
		}

		fmt.Fprintf(b, " largest change after %s |\n|---|%s---|\n", points[ref].point, strings.Repeat("---|", len(points)))

		for _, t := range targets {
			if !slices.ContainsFunc(points, func(sc scenario) bool { return takesPart(res, sc.id, t.name) }) {
				continue
			}

			sums := make([]summary, len(points))
			for i, sc := range points {
				sums[i] = summarize(res.recs[sc.id][t.name], res.skipped[sc.id][t.name])
			}

			line := func(label string, cell func(summary) string, last string) {
				fmt.Fprintf(b, "| %s |", label)

				for _, s := range sums {
					fmt.Fprintf(b, " %s |", cell(s))
				}

				fmt.Fprintf(b, " %s |\n", last)
			}

			line(t.name, summary.cell, change(sums, ref, func(s summary) spread { return s.value }, points))

			if points[0].cpuUnit != "" {
				line(t.name+", server CPU (s/"+points[0].cpuUnit+")", func(s summary) string { return s.cpu.cell("") },
					change(sums, ref, func(s summary) spread { return s.cpu }, points))
			}

			if slices.ContainsFunc(sums, func(s summary) bool { return s.peak.n > 0 }) {
				line(t.name+", peak RSS rise in one listing (KiB)", func(s summary) string { return s.peak.cell("") },
					perEntry(sums, points))
			}
		}

		b.WriteString("\n")
	}
}

// change is the largest relative difference, in percent, of a later point's
// median from the reference point's, and which point that is.
func change(sums []summary, ref int, value func(summary) spread, points []scenario) string {
	r := value(sums[ref])
	if r.n == 0 || r.median == 0 {
		return ""
	}

	worst, at := 0.0, -1

	for i := ref + 1; i < len(sums); i++ {
		v := value(sums[i])
		if v.n == 0 {
			continue
		}

		if d := v.median/r.median - 1; at < 0 || math.Abs(d) > math.Abs(worst) {
			worst, at = d, i
		}
	}

	if at < 0 {
		return ""
	}

	return fmt.Sprintf("%+.0f%% (%s)", 100*worst, points[at].point)
}

// perEntry states the peak RSS rise of the largest listing per entry
// listed: a listing held in memory whole costs a fixed amount per entry.
func perEntry(sums []summary, points []scenario) string {
	for i, s := range slices.Backward(sums) {
		if p := s.peak; p.n > 0 && points[i].list > 0 {
			return fmt.Sprintf("%s bytes per entry at %s", number(p.median*1024/float64(points[i].list)), points[i].point)
		}
	}

	return ""
}

// noiseLine says how much other work shared the server's core during the
// measurements: the machine may be shared.
func noiseLine(res results) string {
	var other, irq, steal []float64

	for _, byServer := range res.recs {
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
