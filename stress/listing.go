package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"wharf/internal/ftpraw"
)

// Scenario 8: a huge directory listed by many clients; pattern bombs.

const (
	bigEntries   = 200_000
	listClients  = 20
	rssBound     = 512 << 20 // peak RSS bound of scenario 8
	patternBound = 50 * time.Millisecond
)

// makeEntries fills dir with n empty files named prefix and a six-digit
// number. They are hard links, four writers each linking to a file of its
// own (ext4 allows 65,000 links to one file): on ext4 that is about four
// times faster than creating files. The folder and the files are readable
// by everyone: anonymous sessions see nothing else (world_readable_only).
func makeEntries(dir string, n int, prefix string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // public, as anonymous sessions need
		return err
	}

	const writers = 4

	errs := make([]error, writers)
	var wg sync.WaitGroup

	for k := range writers {
		wg.Go(func() {
			src := filepath.Join(filepath.Dir(dir), fmt.Sprintf(".entry-source-%d", k))
			if errs[k] = os.WriteFile(src, nil, 0o644); errs[k] != nil { //nolint:gosec // public, as anonymous sessions need
				return
			}
			defer os.Remove(src)

			for i := k; i < n; i += writers {
				if errs[k] = os.Link(src, filepath.Join(dir, fmt.Sprintf("%s%06d", prefix, i))); errs[k] != nil {
					return
				}
			}
		})
	}

	wg.Wait()

	return errors.Join(errs...)
}

// listing is one client's listing of the big folder.
type listing struct {
	kind    string // LIST, MLSD or STAT
	entries int
	took    time.Duration
	err     error
}

// listBig lists /big with kind and counts the entries.
func listBig(c *ftpraw.Conn, kind string) listing {
	l := listing{kind: kind}
	start := time.Now()

	if kind == "STAT" {
		rep, err := c.CmdWithin(2*time.Minute, "STAT /big")
		l.took = time.Since(start)

		switch {
		case err != nil:
			l.err = err
		case rep.Code != 213 && rep.Code != 212 && rep.Code != 211:
			l.err = &ftpraw.ReplyError{Cmd: "STAT", Got: rep}
		default:
			// The first and last lines are the reply's frame; the rest are entries.
			l.entries = max(0, strings.Count(rep.Msg, "\n")-1)
		}

		return l
	}

	// wharf sends 150 once it has read the folder, after waiting for a listing slot.
	data, err := c.StartTransfer(kind+" /big", 2*time.Minute)
	if err != nil {
		l.err = err

		return l
	}
	defer data.Close()

	_ = data.SetReadDeadline(time.Now().Add(2 * time.Minute))
	sc := bufio.NewScanner(data)
	for sc.Scan() {
		// MLSD may list the folder itself and its parent (RFC 3659 §7.5.1).
		if line := strings.ToLower(sc.Text()); !strings.Contains(line, "type=cdir;") && !strings.Contains(line, "type=pdir;") {
			l.entries++
		}
	}

	rep, err := c.ReadWithin(2 * time.Minute)
	l.took = time.Since(start)

	if err == nil && rep.Code != 226 {
		err = &ftpraw.ReplyError{Cmd: kind, Got: rep}
	}

	l.err = err

	return l
}

// runBigListing is scenario 8.
func runBigListing(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	st.idleTimeout, st.loginTimeout = "60s", "60s"
	st.maxListEntries = 100_000 // the default, written out

	dir := filepath.Join(s.root, "big-listing", "pub")
	start := time.Now()
	if err := makeEntries(filepath.Join(dir, "big"), bigEntries, "entry-"); err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Join(dir, "big"))

	// Names that would make a backtracking matcher crawl.
	for _, name := range []string{strings.Repeat("a", 200), strings.Repeat("a", 199) + "c", strings.Repeat("ab", 100)} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil { //nolint:gosec // public, as anonymous sessions need
			return err
		}
	}

	r.note("folder made", "%d entries in %s", bigEntries, ms(time.Since(start)))

	w, err := s.start(ctx, "big-listing", st)
	if err != nil {
		return err
	}
	defer w.stop()

	conns, err := loginMany(ctx, w, listClients, listClients, func(i int) net.IP { return localIP(2 + i%2) }, "anonymous", "lister@example.com")
	if err != nil {
		return err
	}

	defer func() {
		for _, c := range conns {
			quit(c)
		}
	}()

	rssBefore, _, err := w.memory()
	if err != nil {
		return err
	}

	kinds := []string{"LIST", "MLSD", "STAT"}
	results := make([]listing, listClients)

	var wg sync.WaitGroup
	begin := time.Now()
	for i, c := range conns {
		wg.Go(func() { results[i] = listBig(c, kinds[i%3]) })
	}

	wg.Wait()
	took := time.Since(begin)

	rssAfter, peak, err := w.memory()
	if err != nil {
		return err
	}

	capped, busy := 0, 0
	refusals := make(map[string]int) // "LIST 450" → how many
	var wrong []string
	var times []time.Duration
	for _, l := range results {
		re, isReply := errors.AsType[*ftpraw.ReplyError](l.err)
		switch {
		case l.err == nil && l.entries == st.maxListEntries:
			capped++
			times = append(times, l.took)
		case isReply && strings.Contains(re.Got.Msg, "too many listings"):
			busy++
			refusals[fmt.Sprintf("%s %d", l.kind, re.Got.Code)]++
		default:
			wrong = append(wrong, fmt.Sprintf("%s: %d entries %v", l.kind, l.entries, l.err))
		}
	}

	firstWrong := ""
	if len(wrong) > 0 {
		firstWrong = wrong[0]
	}

	var codes []string
	for what, n := range refusals {
		codes = append(codes, fmt.Sprintf("%s ×%d", what, n))
	}

	slices.Sort(codes)

	// wharf lists at most 2×GOMAXPROCS folders at once and refuses a listing
	// that waited 30 s for its turn: those are counted, not failed.
	r.check("20 listings of 200,000 entries at once (7 LIST, 7 MLSD, 6 STAT)", capped+busy == listClients && capped > 0,
		fmt.Sprintf("each returns max_list_entries = %d, or is refused after waiting 30 s for a listing slot", st.maxListEntries),
		"%d returned %d entries (%s); %d refused \"too many listings in progress\" (%s); %d other%s; all over in %s",
		capped, st.maxListEntries, spread(times), busy, strings.Join(codes, ", "), len(wrong), errNote(firstWrong), ms(took))
	r.check("wharf's peak RSS", peak <= rssBound, "≤ "+mib(rssBound), "%s peak (VmHWM); %s before, %s after", mib(peak), mib(rssBefore), mib(rssAfter))

	return patternBombs(ctx, w, r)
}

// patternBombs times listings with hostile patterns, in the folder of long
// names and in the big folder.
func patternBombs(ctx context.Context, w *wharf, r *result) error {
	c, err := login(ctx, localIP(4), w.addr, "anonymous", "bomber@example.com")
	if err != nil {
		return err
	}
	defer quit(c)

	bombs := []string{
		"*/../*/../*",
		strings.Repeat("*", 300),
		strings.Repeat("*a", 100) + "b",
		strings.Repeat("?", 200) + "*b",
	}

	var slow []string
	var worst time.Duration
	var replies []string

	for _, bomb := range bombs {
		took, rep, err := listPattern(c, bomb)
		if err != nil {
			return fmt.Errorf("LIST %s: %w", bomb, err)
		}

		worst = max(worst, took)
		replies = append(replies, fmt.Sprint(rep.Code))
		if took > patternBound {
			slow = append(slow, fmt.Sprintf("%.20q… %s", bomb, ms(took)))
		}
	}

	r.check("pattern bombs (LIST */../*/../*, 300 *, (*a)×100 b, ?×200 *b)", len(slow) == 0, "each answered within 50 ms",
		"slowest %s; replies %s%s", ms(worst), strings.Join(replies, ", "), errNote(strings.Join(slow, "; ")))

	// For the record: a pattern matching nothing in the big folder reads all
	// of it, since max_list_entries counts matches, not entries read.
	took, rep, err := listPattern(c, "/big/"+strings.Repeat("*a", 100)+"b")
	if err != nil {
		return err
	}

	r.note("LIST /big/(*a)×100b, matching none of 200,000 entries", "%v in %s (max_list_entries bounds the entries read, matching or not)", rep.Code, ms(took))

	return nil
}

// listPattern sends LIST pattern and times it to the final reply.
func listPattern(c *ftpraw.Conn, pattern string) (time.Duration, ftpraw.Reply, error) {
	data, err := c.OpenData()
	if err != nil {
		return 0, ftpraw.Reply{}, err
	}
	defer data.Close()

	start := time.Now()

	rep, err := c.Cmd("LIST " + pattern)
	if err != nil {
		return 0, rep, err
	}

	if rep.Code < 200 {
		_ = data.SetReadDeadline(time.Now().Add(replyTimeout))
		readAllFrom(data)

		if rep, err = c.ReadWithin(replyTimeout); err != nil {
			return 0, rep, err
		}
	}

	return time.Since(start), rep, nil
}
