package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wharf/internal/ftpraw"
)

// Scenario 12: garbage before login.

const (
	garbageConns = 10              // one a client address, 127.0.0.2-11
	garbageFor   = 2 * time.Second // how long each address floods
	garbageLine  = 4 << 10         // bytes a line, CR LF included
	garbageLines = 256             // different lines, made once and sent in turn
	logGrowth    = 64 << 10        // bound of the log's growth, 10 connections together
	// logPerConn bounds what one connection that sends nothing but garbage
	// costs the log: wharf logs at most three of its lines, each with at most
	// 16 of its bytes, a summary and the session's end.
	logPerConn = 2 << 10
)

// garbage is a set of lines of random printable bytes, none with a valid
// verb: the first byte is never a letter, and FTP verbs are letters only.
type garbage [][]byte

func newGarbage() garbage {
	const notLetters = "!\"#$%&'()*+,-./0123456789:;<=>?@[\\]^_`{|}~"

	out := make(garbage, garbageLines)
	for i := range out {
		line := make([]byte, garbageLine)
		_, _ = rand.Read(line)

		line[0] = notLetters[int(line[0])%len(notLetters)]
		for j := 1; j < garbageLine-2; j++ {
			line[j] = ' ' + line[j]%('~'-' '+1)
		}

		line[garbageLine-2], line[garbageLine-1] = '\r', '\n'
		out[i] = line
	}

	return out
}

// spew is one garbage connection, as the flooder saw it.
type spew struct {
	greeted  bool          // got 220
	sent     int64         // bytes the kernel took from the flooder
	replies  int           // replies read
	refused  bool          // got 421 "Too many unknown commands before login"
	closed   bool          // wharf closed the connection (EOF or reset)
	closedIn time.Duration // from the greeting to the close
	err      error
}

// spewOne connects from local, reads the greeting and sends garbage lines
// (lines[first], then the next ones) until wharf closes the connection or
// until, reading replies meanwhile; it waits a second more for the close.
func spewOne(ctx context.Context, local net.IP, addr string, lines garbage, first int, until time.Time) spew {
	var sp spew

	c, rep, err := dialFTP(ctx, local, addr)
	if err != nil {
		sp.err = err

		return sp
	}
	defer c.Close()

	if rep.Code != 220 {
		sp.err = &ftpraw.ReplyError{Cmd: "connect", Got: rep}

		return sp
	}

	sp.greeted = true
	start := time.Now()

	var stop atomic.Bool
	var readers sync.WaitGroup
	readers.Go(func() {
		defer stop.Store(true)

		for {
			rep, err := c.ReadWithin(time.Until(until) + time.Second)
			if err != nil {
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					sp.err = err
				} else {
					sp.closed, sp.closedIn = true, time.Since(start)
				}

				return
			}

			sp.replies++
			if rep.Code == 421 && strings.Contains(rep.Msg, "Too many unknown commands") {
				sp.refused = true
			}
		}
	})

	_ = c.NetConn().SetWriteDeadline(until)
	for i := first; !stop.Load() && time.Now().Before(until); i++ {
		n, err := c.NetConn().Write(lines[i%len(lines)])
		sp.sent += int64(n)

		if err != nil {
			break
		}
	}

	readers.Wait()

	return sp
}

// flooders is what a group of garbage connections did.
type flooders struct {
	mu    sync.Mutex
	spews []spew
}

func (f *flooders) add(sp spew) {
	f.mu.Lock()
	defer f.mu.Unlock()

	f.spews = append(f.spews, sp)
}

// tally sums the connections: how many, greeted, closed by wharf with its
// 421, bytes sent, and the time to close.
func (f *flooders) tally() (n, greeted, refusedClosed int, sent int64, closeTimes []time.Duration, first string) {
	f.mu.Lock()
	defer f.mu.Unlock()

	for _, sp := range f.spews {
		n++
		sent += sp.sent
		if sp.greeted {
			greeted++
		}

		if sp.refused && sp.closed {
			refusedClosed++
			closeTimes = append(closeTimes, sp.closedIn)
		} else if first == "" {
			first = fmt.Sprintf("greeted %v, %d replies, 421 %v, closed %v, %v", sp.greeted, sp.replies, sp.refused, sp.closed, sp.err)
		}
	}

	return n, greeted, refusedClosed, sent, closeTimes, first
}

// runGarbageFlood is scenario 12.
func runGarbageFlood(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	st.idleTimeout, st.loginTimeout = "30s", "30s" // only the garbage count may close them

	w, err := s.start(ctx, "garbage-flood", st)
	if err != nil {
		return err
	}
	defer w.stop()

	lines := newGarbage()
	from := func(i int) net.IP { return localIP(2 + i) }

	// Once: each address opens one connection and floods it for 2 s.
	before, err := w.settledLogSize(ctx)
	if err != nil {
		return err
	}

	var once flooders
	until := time.Now().Add(garbageFor)
	var wg sync.WaitGroup
	for i := range garbageConns {
		wg.Go(func() { once.add(spewOne(ctx, from(i), w.addr, lines, i*garbageLines/garbageConns, until)) })
	}

	wg.Wait()

	after, err := w.settledLogSize(ctx)
	if err != nil {
		return err
	}

	n, greeted, closed, sent, times, first := once.tally()
	longest, err := w.longestLogLine(before)
	if err != nil {
		return err
	}

	r.check(fmt.Sprintf("%d connections (127.0.0.2-%d) send 4 KiB garbage lines before login for %s", garbageConns, 1+garbageConns, garbageFor),
		greeted == garbageConns && closed == garbageConns, "each closed by wharf after its 421 \"Too many unknown commands before login\"",
		"%d of %d closed so%s, %s after the greeting; %s sent (what the kernel took from the flooders: past the tenth line, wharf drops it unread)",
		closed, n, errNote(first), spread(times), mb(sent))
	r.check("wharf's log growth", after-before < logGrowth, "< "+kib(logGrowth)+" in total",
		"%d bytes for %s of garbage (%d bytes a connection); longest new line %d bytes", after-before, mb(sent), (after-before)/int64(garbageConns), longest)

	// Then: each address reconnects as soon as it is closed, for 2 s.
	before = after

	var again flooders
	until = time.Now().Add(garbageFor)
	for i := range garbageConns {
		wg.Go(func() {
			for k := 0; time.Now().Before(until) && ctx.Err() == nil; k++ {
				sp := spewOne(ctx, from(i), w.addr, lines, i+k, until)
				again.add(sp)
				if !sp.greeted {
					_ = sleep(ctx, 10*time.Millisecond) // refused (max_clients_per_ip): the last one is not yet gone
				}
			}
		})
	}

	wg.Wait()

	if after, err = w.settledLogSize(ctx); err != nil {
		return err
	}

	n, greeted, closed, sent, times, _ = again.tally()
	grown := after - before
	perConn := int64(0)
	if greeted > 0 {
		perConn = grown / int64(greeted)
	}

	r.note(fmt.Sprintf("the same %d addresses, each reconnecting as soon as it is closed, for %s", garbageConns, garbageFor),
		"%d connections (%d greeted, %d closed by wharf after its 421, the rest cut short by the end of the 2 s); %s sent; closed %s after the greeting",
		n, greeted, closed, mb(sent), spread(times))
	r.note("wharf's log growth while they reconnect", "%s in %s (%s a second): it grows with the connections, and no per-address connection rate bounds those",
		kib(grown), garbageFor, kib(int64(float64(grown)/garbageFor.Seconds())))
	r.check("wharf's log growth per garbage connection", greeted > 0 && perConn <= logPerConn, "≤ "+kib(logPerConn),
		"%d bytes on average over %d connections", perConn, greeted)

	return nil
}

// settledLogSize is the size of wharf.log once wharf has flushed it: wharf
// writes its log in batches at least every 200 ms, so the size is read
// until it stays the same for half a second.
func (w *wharf) settledLogSize(ctx context.Context) (int64, error) {
	path := filepath.Join(w.dir, "wharf.log")
	last := int64(-1)

	for range 40 {
		st, err := os.Stat(path)
		if err != nil {
			return 0, err
		}

		if st.Size() == last {
			return last, nil
		}

		last = st.Size()
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return 0, err
		}
	}

	return last, fmt.Errorf("%s still grows after 20 s", path)
}

// longestLogLine is the length of the longest line of wharf.log after offset.
func (w *wharf) longestLogLine(offset int64) (int, error) {
	f, err := os.Open(filepath.Join(w.dir, "wharf.log"))
	if err != nil {
		return 0, err
	}
	defer f.Close()

	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}

	b, err := io.ReadAll(f)
	if err != nil {
		return 0, err
	}

	longest := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		longest = max(longest, len(line))
	}

	return longest, nil
}

// kib formats a byte count in KiB.
func kib(n int64) string {
	return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
}

// mb formats a byte count in MB (10^6), as traffic is counted.
func mb(n int64) string {
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
