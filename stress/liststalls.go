package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"wharf/internal/ftpraw"
)

// Scenario 11: listings of a huge folder whose data connection never reads.

const (
	stallEntries = 100_000
	stallListers = 20
	// Names of 100 bytes make every listing (NLST's too, 10 MB) several times
	// what loopback buffers between a sender and a receiver that never reads
	// (about 2.8 MB measured), so wharf really stops on a full socket.
	stallPrefixLen = 94

	listingBudget = 256 << 20 // max_listing_memory, wharf's default
	// max_listing_memory bounds the listings' own memory; the heap also holds
	// wharf's baseline (3 MiB here), the lines being formatted and garbage
	// not yet collected: the peak may pass the budget by this much.
	heapPeakSlack = 32 << 20
	// Once the listings are cut, the heap must come back to its baseline +
	// this, within heapBackWithin.
	heapBackSlack  = 8 << 20
	heapBackWithin = 2 * time.Second
	smallEntries   = 20 // the folder the bystander lists
	bystanderEvery = 200 * time.Millisecond

	// listingReplyWait bounds the wait for a listing's 150: wharf makes a
	// listing wait up to 30 s for a slot or for memory, then answers 450.
	listingReplyWait = 40 * time.Second
)

// listStallKind is how one stalled listing is started: its command, passive
// or active data connection, and TYPE I or TYPE A.
type listStallKind struct {
	verb   string
	active bool
	ascii  bool
}

// listStallKindOf spreads the 20 stalled listings over the 12 kinds.
func listStallKindOf(i int) listStallKind {
	c := i % 12

	return listStallKind{verb: []string{"LIST", "NLST", "MLSD"}[c%3], active: (c/3)%2 == 1, ascii: c >= 6}
}

func (k listStallKind) String() string {
	mode, typ := "passive", "TYPE I"
	if k.active {
		mode = "active"
	}

	if k.ascii {
		typ = "TYPE A"
	}

	return k.verb + ", " + mode + ", " + typ
}

// listStall is one stalled listing of scenario 11.
type listStall struct {
	kind   listStallKind
	cutAt  time.Time     // the 426 or 421 came
	filled time.Duration // from the 150 to the last byte wharf queued
	cut    time.Duration // from the last byte wharf queued to the cut
	queued int64         // bytes wharf queued before it stopped
	reply  ftpraw.Reply  // the 426 or 421
	after  string        // what the session did after the cut: "NOOP 200", "closed"
	err    error
}

// runStalledListings is scenario 11: 20 sessions list a folder of 100,000
// entries and never read; each must be cut at data_timeout, the heap must
// stay under max_listing_memory and come back, and another address must
// be served meanwhile.
func runStalledListings(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	st.idleTimeout, st.loginTimeout = "30s", "30s" // only data_timeout may cut the listings
	st.maxListingMem = fmt.Sprintf("%dMiB", listingBudget>>20)
	st.pprof = true
	dataTimeout, _ := time.ParseDuration(st.dataTimeout)

	dir := filepath.Join(s.root, "stalled-listings", "pub")
	start := time.Now()
	if err := makeEntries(filepath.Join(dir, "big"), stallEntries, "entry-"+strings.Repeat("x", stallPrefixLen-6)); err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Join(dir, "big"))

	if err := makeEntries(filepath.Join(dir, "small"), smallEntries, "small-"); err != nil {
		return err
	}

	r.note("folder made", "100,000 entries with 100-byte names in %s", ms(time.Since(start)))

	w, err := s.start(ctx, "stalled-listings", st)
	if err != nil {
		return err
	}
	defer w.stop()

	conns, err := loginMany(ctx, w, stallListers, stallListers, func(i int) net.IP { return localIP(2 + i%2) }, "anonymous", "stall@example.com")
	if err != nil {
		return err
	}

	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	bystander, err := login(ctx, localIP(4), w.addr, "anonymous", "bystander@example.com")
	if err != nil {
		return err
	}
	defer quit(bystander)

	// One listing of the small folder first, so that the baseline counts
	// what serving it costs.
	if _, rep, err := listPattern(bystander, "/small"); err != nil || rep.Code != 226 {
		return fmt.Errorf("LIST /small before the stalls: %v %w", rep, err)
	}

	base, err := heapBaseline(ctx, w)
	if err != nil {
		return err
	}

	forcedBase, err := w.heapInUse(ctx, true)
	if err != nil {
		return err
	}

	diag, err := openSockDiag()
	if err != nil {
		return err
	}
	defer diag.Close()

	tracker := newFlowTracker(diag)
	sampler := newHeapSampler(w)
	by := newBystander(bystander)

	watch, stopWatch := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { tracker.run(watch) })
	bg.Go(func() { sampler.run(watch) })
	bg.Go(func() { by.run(watch) })

	stopAll := func() {
		stopWatch()
		bg.Wait()
	}
	defer stopAll()

	results := make([]listStall, stallListers)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() { results[i] = stallListing(ctx, c, listStallKindOf(i), tracker) })
	}

	wg.Wait()

	if err := tracker.failure(); err != nil {
		return err
	}

	// The heap after the cuts: polled until it is back, for heapBackWithin.
	lastCut := time.Now()
	if cuts := cutTimes(results); len(cuts) > 0 {
		lastCut = slices.MaxFunc(cuts, time.Time.Compare)
	}

	back := heapBack(ctx, w, base+heapBackSlack, lastCut, heapBackWithin)
	peak := sampler.peak()
	stopAll()

	forcedAfter, err := w.heapInUse(ctx, true)
	if err != nil {
		return err
	}

	_, hwm, err := w.memory()
	if err != nil {
		return err
	}

	reportListStalls(r, results, dataTimeout)

	r.check("wharf's Go heap during the stalls", peak <= listingBudget+heapPeakSlack && peak > 0,
		fmt.Sprintf("peak ≤ max_listing_memory (%s) + %s", mib(listingBudget), mib(heapPeakSlack)),
		"peak %s (go_memstats_heap_inuse_bytes, sampled every 100 ms); baseline %s; peak RSS (VmHWM) %s", mib(peak), mib(base), mib(hwm))
	r.check("wharf's Go heap after the cuts", back.ok, fmt.Sprintf("back to baseline + %s within %s of the last cut", mib(heapBackSlack), heapBackWithin),
		"%s %s after the last cut (baseline %s), %d garbage collections meanwhile; then, after a collection forced by the suite: %s (baseline %s)",
		mib(back.last), ms(back.after), mib(base), back.gcs, mib(forcedAfter), mib(forcedBase))

	bys := by.result()
	r.check(fmt.Sprintf("another address lists a %d-entry folder every %s meanwhile", smallEntries, bystanderEvery), bys.failed == 0 && len(bys.times) > 0,
		"all succeed (226)", "%d of %d succeeded%s; worst %s (%s)", len(bys.times), len(bys.times)+bys.failed, errNote(bys.firstErr),
		ms(pct(bys.times, 100)), spread(bys.times))

	return nil
}

// cutTimes are the moments the cuts came.
func cutTimes(results []listStall) []time.Time {
	var out []time.Time
	for _, res := range results {
		if !res.cutAt.IsZero() {
			out = append(out, res.cutAt)
		}
	}

	return out
}

// reportListStalls checks the cuts: each at data_timeout ± 1 s after wharf
// stopped queueing bytes, with 426 (session goes on) in TYPE I and 421 (session
// closed) in TYPE A.
func reportListStalls(r *result, results []listStall, dataTimeout time.Duration) {
	for _, ascii := range []bool{false, true} {
		var cuts, fills []time.Duration
		var queued []int64
		n, good, off := 0, 0, 0
		var first string

		for _, res := range results {
			if res.kind.ascii != ascii {
				continue
			}

			n++

			want, after := 426, "NOOP 200"
			if ascii {
				want, after = 421, "closed"
			}

			ok := res.err == nil && res.reply.Code == want && res.after == after
			if ascii {
				ok = ok && strings.HasPrefix(res.reply.Msg, "Data timeout")
			}

			if ok {
				good++
				cuts = append(cuts, res.cut)
				fills = append(fills, res.filled)
				queued = append(queued, res.queued)
				if res.cut < dataTimeout-time.Second || res.cut > dataTimeout+time.Second {
					off++
				}
			} else if first == "" {
				first = fmt.Sprintf("%s: %v, then %s, %v", res.kind, res.reply, res.after, res.err)
			}
		}

		name := fmt.Sprintf("%d stalled LIST/NLST/MLSD in TYPE I (passive and active)", n)
		bound := fmt.Sprintf("426 at data_timeout = %s ± 1 s after the data stopped, then the session answers NOOP", dataTimeout)
		if ascii {
			name = fmt.Sprintf("%d stalled LIST/NLST/MLSD in TYPE A (passive and active)", n)
			bound = fmt.Sprintf("421 Data timeout at data_timeout = %s ± 1 s after the data stopped, then the session is closed", dataTimeout)
		}

		r.check(name, good == n && off == 0, bound,
			"%d of %d answered so, %d of them outside data_timeout ± 1 s%s; cut %s after the data stopped; the data stopped %s after the 150, with %s queued by wharf",
			good, n, off, errNote(first), spread(cuts), spreadMax(fills), kibRange(queued))
	}
}

// stallListing starts a listing of /big that is never read and waits for
// wharf to cut it.
func stallListing(ctx context.Context, c *ftpraw.Conn, k listStallKind, tracker *flowTracker) listStall {
	res := listStall{kind: k}

	typ := "TYPE I"
	if k.ascii {
		typ = "TYPE A"
	}

	if _, res.err = c.Expect(200, typ); res.err != nil {
		return res
	}

	var data *net.TCPConn
	data, res.err = startUnread(ctx, c, k.verb+" /big", k.active)
	if res.err != nil {
		return res
	}
	defer ftpraw.Reset(data)

	started := time.Now()
	f := tracker.add(data)

	res.reply, res.err = c.ReadWithin(15 * time.Second)
	res.cutAt = time.Now()
	if res.err != nil {
		return res
	}

	stopped, queued := f.last()
	res.filled, res.cut, res.queued = stopped.Sub(started), res.cutAt.Sub(stopped), queued

	if k.ascii {
		if _, closed := ftpraw.WaitClosed(c.NetConn(), time.Now().Add(5*time.Second)); closed {
			res.after = "closed"
		} else {
			res.after = "still open 5 s later"
		}

		return res
	}

	rep, err := c.Cmd("NOOP")
	switch {
	case err != nil:
		res.after = "NOOP: " + err.Error()
	default:
		res.after = fmt.Sprintf("NOOP %d", rep.Code)
	}

	return res
}

// startUnread opens a data connection whose receive buffer is as small as
// the kernel allows (set before it connects or is accepted, so the window
// is small from the start), sends line and waits for its 150.
func startUnread(ctx context.Context, c *ftpraw.Conn, line string, active bool) (*net.TCPConn, error) {
	if !active {
		port, err := c.EPSV()
		if err != nil {
			return nil, err
		}

		d := &net.Dialer{Timeout: dialTimeout, LocalAddr: &net.TCPAddr{IP: c.Local()}, Control: smallReceiveBuffer}

		nc, err := d.DialContext(ctx, "tcp", c.DataAddr(port))
		if err != nil {
			return nil, err
		}

		data := nc.(*net.TCPConn)
		if err := expectPreliminary(c, line); err != nil {
			ftpraw.Reset(data)

			return nil, err
		}

		return data, nil
	}

	lc := net.ListenConfig{Control: smallReceiveBuffer}
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(c.Local().String(), "0"))
	if err != nil {
		return nil, err
	}
	defer ln.Close()

	if _, err := c.Expect(200, "PORT "+portArg(c.Local(), ln.Addr().(*net.TCPAddr).Port)); err != nil {
		return nil, err
	}

	if err := c.Send(line); err != nil {
		return nil, err
	}

	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(listingReplyWait))
	conn, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("accept the active data connection: %w", err)
	}

	data := conn.(*net.TCPConn)
	if rep, err := c.ReadWithin(listingReplyWait); err != nil || (rep.Code != 150 && rep.Code != 125) {
		ftpraw.Reset(data)

		return nil, fmt.Errorf("%s: %v %w", line, rep, err)
	}

	return data, nil
}

// expectPreliminary sends line and expects 150 or 125 within
// listingReplyWait.
func expectPreliminary(c *ftpraw.Conn, line string) error {
	rep, err := c.CmdWithin(listingReplyWait, line)
	if err == nil && rep.Code != 150 && rep.Code != 125 {
		verb, _, _ := strings.Cut(line, " ")
		err = &ftpraw.ReplyError{Cmd: verb, Got: rep}
	}

	return err
}

// smallReceiveBuffer sets SO_RCVBUF to 4 KiB (the kernel doubles it) on a
// socket before it connects or listens.
func smallReceiveBuffer(_, _ string, rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	}); err != nil {
		return err
	}

	return serr
}

// flow is one data connection the client never reads: what wharf has
// written to it is what its own socket has not yet sent (its send queue)
// plus what the client's socket holds unread (its receive queue), both asked
// of the kernel (sockDiag). When that stops growing, wharf's write is
// blocked: the data stopped moving.
type flow struct {
	client, server netip.AddrPort

	mu    sync.Mutex
	bytes int64
	grew  time.Time
}

// last is when the bytes wharf wrote last grew, and to how many.
func (f *flow) last() (time.Time, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()

	return f.grew, f.bytes
}

// flowTracker polls the queues of the flows added to it every 10 ms.
type flowTracker struct {
	diag *sockDiag

	mu    sync.Mutex
	flows []*flow
	err   error // the first failure to read queues
}

func newFlowTracker(diag *sockDiag) *flowTracker { return &flowTracker{diag: diag} }

// add starts tracking data, from now.
func (t *flowTracker) add(data *net.TCPConn) *flow {
	client, server := data.LocalAddr().(*net.TCPAddr).AddrPort(), data.RemoteAddr().(*net.TCPAddr).AddrPort()
	f := &flow{
		client: netip.AddrPortFrom(client.Addr().Unmap(), client.Port()),
		server: netip.AddrPortFrom(server.Addr().Unmap(), server.Port()),
		grew:   time.Now(),
	}

	t.mu.Lock()
	t.flows = append(t.flows, f)
	t.mu.Unlock()

	t.poll() // the bytes queued already

	return f
}

func (t *flowTracker) run(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()

	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			t.poll()
		}
	}
}

// failure is the first error reading queues, if any.
func (t *flowTracker) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()

	return t.err
}

// poll reads the queues once and moves each flow's last growth.
func (t *flowTracker) poll() {
	t.mu.Lock()
	defer t.mu.Unlock()

	for _, f := range t.flows {
		wharf, err1 := t.diag.queues(f.server, f.client)
		client, err2 := t.diag.queues(f.client, f.server)
		if err := errors.Join(err1, err2); err != nil {
			t.err = cmp.Or(t.err, err)

			continue
		}

		n := wharf.tx + client.rx
		now := time.Now()

		f.mu.Lock()
		if n > f.bytes {
			f.bytes, f.grew = n, now
		}
		f.mu.Unlock()
	}
}

// heapSampler records the highest Go heap in use seen while it runs.
type heapSampler struct {
	w   *wharf
	mu  sync.Mutex
	max int64
}

func newHeapSampler(w *wharf) *heapSampler { return &heapSampler{w: w} }

func (h *heapSampler) run(ctx context.Context) {
	for ctx.Err() == nil {
		if v, err := h.w.heapInUse(ctx, false); err == nil {
			h.mu.Lock()
			h.max = max(h.max, v)
			h.mu.Unlock()
		}

		_ = sleep(ctx, 100*time.Millisecond)
	}
}

func (h *heapSampler) peak() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()

	return h.max
}

// heapBaseline is the least Go heap in use of three samples.
func heapBaseline(ctx context.Context, w *wharf) (int64, error) {
	var base int64

	for i := range 3 {
		v, err := w.heapInUse(ctx, false)
		if err != nil {
			return 0, err
		}

		if i == 0 || v < base {
			base = v
		}

		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, err
		}
	}

	return base, nil
}

// heapReturn is the Go heap in use after the cuts, as heapBack saw it.
type heapReturn struct {
	last  int64         // the last heap in use read
	after time.Duration // when it was read, from the last cut
	ok    bool          // it was back
	gcs   int           // garbage collections that ran meanwhile (go_gc_duration_seconds_count)
}

// heapBack polls the Go heap in use until it is at most bound, for within
// from since, counting the collections that ran meanwhile.
func heapBack(ctx context.Context, w *wharf, bound int64, since time.Time, within time.Duration) heapReturn {
	var h heapReturn
	gcs0 := -1

	for {
		if m, err := w.metrics(ctx); err == nil {
			h.last = int64(m["go_memstats_heap_inuse_bytes"])
			if n := int(m["go_gc_duration_seconds_count"]); gcs0 < 0 {
				gcs0 = n
			} else {
				h.gcs = n - gcs0
			}

			if h.last <= bound {
				h.after, h.ok = time.Since(since), true

				return h
			}
		}

		if h.after = time.Since(since); h.after > within || ctx.Err() != nil {
			return h
		}

		_ = sleep(ctx, 50*time.Millisecond)
	}
}

// bystander is a client from another address that lists a small folder
// every bystanderEvery while the stalls last.
type bystander struct {
	c *ftpraw.Conn

	mu       sync.Mutex
	times    []time.Duration
	failed   int
	firstErr string
}

func newBystander(c *ftpraw.Conn) *bystander { return &bystander{c: c} }

func (b *bystander) run(ctx context.Context) {
	tick := time.NewTicker(bystanderEvery)
	defer tick.Stop()

	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}

		took, rep, err := listPattern(b.c, "/small")
		if err == nil && rep.Code != 226 {
			err = &ftpraw.ReplyError{Cmd: "LIST", Got: rep}
		}

		b.mu.Lock()
		if err != nil {
			b.failed++
			if b.firstErr == "" {
				b.firstErr = err.Error()
			}
		} else {
			b.times = append(b.times, took)
		}
		b.mu.Unlock()

		if err != nil && !errors.As(err, new(*ftpraw.ReplyError)) {
			return // the connection is gone
		}
	}
}

type bystanderResult struct {
	times    []time.Duration
	failed   int
	firstErr string
}

func (b *bystander) result() bystanderResult {
	b.mu.Lock()
	defer b.mu.Unlock()

	return bystanderResult{times: b.times, failed: b.failed, firstErr: b.firstErr}
}

// kibRange formats the least and the most of byte counts: "2744-2750 KiB".
func kibRange(ns []int64) string {
	if len(ns) == 0 {
		return "no samples"
	}

	return fmt.Sprintf("%.0f-%.0f KiB", float64(slices.Min(ns))/(1<<10), float64(slices.Max(ns))/(1<<10))
}

// spreadMax formats the median and the most of samples.
func spreadMax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}

	return fmt.Sprintf("p50 %s, max %s", ms(pct(ds, 50)), ms(pct(ds, 100)))
}
