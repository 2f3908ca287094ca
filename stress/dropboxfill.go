package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"wharf/internal/ftpraw"
	"wharf/internal/procstat"
)

// Scenario 13: the anonymous drop box filled from 8 addresses.

const (
	fillAddrs    = 8  // 127.0.0.2-9
	fillSessions = 2  // sessions at once from each address
	fillFresh    = 10 // 127.0.0.10, the legitimate uploader after the flood

	// rateFlood is how long phase 1's addresses keep going at their limits.
	rateFlood = 5 * time.Second
	// Each flood of phase 2 goes on at the limit it aims at for fillHold
	// (fillHold/2 for entries), and until every session has met that limit
	// three times, but no longer than fillCap.
	fillHold = 3 * time.Second
	fillCap  = 15 * time.Second
	// refusedPause is how long a filler waits after a refusal before its next
	// command, as a client that retries would.
	refusedPause = 20 * time.Millisecond
	// leaveAfter is how many 450s in a row make a byte filler of phase 1 log
	// in again: under the 10 that make wharf close the session with 421, so
	// that every 421 of phase 1 comes from the entry flooders and is theirs
	// to count (see fillTally).
	leaveAfter = 5
	// sampleEvery spaces the frozen samples of the box during a flood.
	sampleEvery = 50 * time.Millisecond
	// blocksPerEntry bounds the blocks an entry of the box takes beyond its
	// bytes: a file's partly filled last block (and an extent block when it
	// is fragmented), a folder's listing.
	blocksPerEntry = 2

	// Upload sizes.
	rateFile  = 1 << 10   // phase 1, entry flooders
	bytesFile = 96 << 10  // phase 1, byte flooders: 5 fit in 512 KiB, the 6th is cut
	bigFile   = 192 << 10 // phase 2
	overFile  = 320 << 10 // phase 2, over max_upload_size
	freshFile = 128 << 10 // the fresh address's upload
)

// fillLimits are the drop box's limits in both phases; phase 1 adds the
// per-address ones. 8 addresses × (12 entries + what 5 s refill) = 104 <
// upload_max_files, and 8 × 512 KiB (+ what 5 s refill) ≈ 4 MiB < upload_quota:
// in phase 1 the per-address limits stop the flood long before the box fills.
func fillLimits(perAddress bool) *boxLimits {
	l := &boxLimits{maxUploadSize: 256 << 10, quota: 8 << 20, maxFiles: 200, maxDepth: 4}
	if perAddress {
		l.rate, l.bytesPerHour = 12, 512<<10
	}

	return l
}

// Refusal reasons, as wharf_uploads_refused_total labels them.
const (
	reasonQuota = "quota"
	reasonFiles = "files"
	reasonDepth = "depth"
	reasonRate  = "rate"
	reasonBytes = "bytes"
	reasonSize  = "size"
)

var fillReasons = []string{reasonQuota, reasonFiles, reasonDepth, reasonRate, reasonBytes, reasonSize}

// refusalTexts are the documented replies of the drop box's refusals, by the
// start of their text, and the code each must come with.
var refusalTexts = []struct {
	reason, prefix string
	code           int
}{
	{reasonQuota, "The drop box is full", 552},
	{reasonFiles, "The drop box holds too many files and folders", 552},
	{reasonDepth, "Too deep:", 552},
	{reasonSize, "Upload exceeds the size limit", 552},
	{reasonRate, "Too many uploads from your address: try again", 450},
	{reasonBytes, "Too much uploaded from your address this hour", 450},
}

// closingText is the 421 that replaces the tenth rate refusal in a row of a
// session, and closes it.
const closingText = "Too many uploads from your address: closing the connection."

// classify tells which limit refused rep, and whether its code is the one
// documented for it ("" if rep is no drop-box refusal).
func classify(rep ftpraw.Reply) (reason string, rightCode bool) {
	if rep.Code == 421 && ftpraw.FirstLine(rep.Msg) == closingText {
		return reasonRate, true
	}

	for _, t := range refusalTexts {
		if strings.HasPrefix(rep.Msg, t.prefix) {
			return t.reason, rep.Code == t.code
		}
	}

	return "", false
}

// fillTally is what the flooders of one wharf saw. A 421 closing a session
// counts as the rate refusal it replaces: in phase 1 only the entry
// flooders, whose byte allowance is never near empty (13 files of 1 KiB at
// most), get ten 450s in a row, and MKD is never refused for bytes.
type fillTally struct {
	mu         sync.Mutex
	refused    map[string]int // by reason
	closed     int            // 421s (counted in refused[rate] too)
	wrongCode  int            // refusals whose code is not the documented one
	unexpected int            // replies and errors that are neither success nor a refusal
	first      string         // the first wrong or unexpected one
	admitted   map[int]int    // MKD 257 and STOR 150, by address
	sessions   int            // logins
}

func newFillTally() *fillTally {
	return &fillTally{refused: make(map[string]int), admitted: make(map[int]int)}
}

func (t *fillTally) note(format string, args ...any) {
	if t.first == "" {
		t.first = fmt.Sprintf(format, args...)
	}
}

// filler is one session's worth of a flood, from one address: it logs in
// again whenever wharf closes the session (421) or it leaves it.
type filler struct {
	ctx  context.Context
	w    *wharf
	t    *fillTally
	addr int // the last byte of 127.0.0.addr
	c    *ftpraw.Conn
	row  int          // 450s in a row on this session
	last ftpraw.Reply // the last reply read

	// piece, when not 0, makes stor send its data in pieces of that many
	// bytes, 1 ms apart, so that wharf reads (and charges) small chunks and
	// uploads racing for the quota's last bytes fill it to the edge.
	piece int
	// ascii sends TYPE A after login: the engine then copies uploads
	// through its own line-ending converter, which must be charged alike.
	ascii bool
}

func (f *filler) conn() (*ftpraw.Conn, error) {
	if f.c == nil {
		c, err := login(f.ctx, localIP(f.addr), f.w.addr, "anonymous", "flood@example.com")
		if err != nil {
			return nil, err
		}

		if f.ascii {
			if _, err := c.Expect(200, "TYPE A"); err != nil {
				c.Close()

				return nil, err
			}
		}

		f.c, f.row = c, 0

		f.t.mu.Lock()
		f.t.sessions++
		f.t.mu.Unlock()
	}

	return f.c, nil
}

func (f *filler) leave() {
	if f.c != nil {
		quit(f.c)
		f.c = nil
	}
}

// outcome records a reply that admits (ok: 257, 150) or refuses, and returns
// the refusal's reason ("" when admitted). A 421 ends the session.
func (f *filler) outcome(what string, rep ftpraw.Reply, ok bool) string {
	f.last = rep

	t := f.t
	t.mu.Lock()
	defer t.mu.Unlock()

	if ok {
		f.row = 0

		return ""
	}

	reason, right := classify(rep)

	switch {
	case reason == "":
		t.unexpected++
		t.note("%s: %v", what, rep)
	case !right:
		t.wrongCode++
		t.note("%s: %v", what, rep)
	}

	if reason != "" {
		t.refused[reason]++
	}

	if rep.Code == 450 {
		f.row++
	}

	if rep.Code == 421 {
		t.closed++
		f.c.Close()
		f.c = nil
	}

	if reason == "" {
		return "?"
	}

	return reason
}

// failed records an error of the connection itself and drops the session.
func (f *filler) failed(what string, err error) string {
	f.t.mu.Lock()
	f.t.unexpected++
	f.t.note("%s: %v", what, err)
	f.t.mu.Unlock()

	if f.c != nil {
		f.c.Close()
		f.c = nil
	}

	return "?"
}

func (f *filler) admit() {
	f.t.mu.Lock()
	f.t.admitted[f.addr]++
	f.t.mu.Unlock()
}

// mkd makes a folder; it returns "" or the refusal's reason.
func (f *filler) mkd(p string) string {
	c, err := f.conn()
	if err != nil {
		return f.failed("login", err)
	}

	rep, err := c.Cmd("MKD " + p)
	if err != nil {
		return f.failed("MKD "+p, err)
	}

	if rep.Code == 257 {
		f.admit()
	}

	return f.outcome("MKD "+p, rep, rep.Code == 257)
}

// stor uploads data as name; it returns "" when it landed (226), or the
// reason of the refusal, of STOR itself or of the upload cut short.
func (f *filler) stor(name string, data []byte) string {
	c, err := f.conn()
	if err != nil {
		return f.failed("login", err)
	}

	dc, err := c.OpenData()
	if err != nil {
		return f.failed("EPSV for "+name, err)
	}

	rep, err := c.Cmd("STOR " + name)
	if err != nil {
		_ = dc.Close()

		return f.failed("STOR "+name, err)
	}

	if rep.Code != 150 && rep.Code != 125 {
		_ = dc.Close()

		return f.outcome("STOR "+name, rep, false)
	}

	f.admit()
	f.outcome("STOR "+name, rep, true)

	// A cut upload's data connection breaks under the writer: the final
	// reply says why.
	_ = dc.SetWriteDeadline(time.Now().Add(replyTimeout))
	for rest := data; len(rest) > 0; {
		n := len(rest)
		if f.piece > 0 {
			n = min(n, f.piece)
		}

		if _, err := dc.Write(rest[:n]); err != nil {
			break
		}

		rest = rest[n:]
		if f.piece > 0 && len(rest) > 0 {
			time.Sleep(time.Millisecond)
		}
	}

	_ = dc.Close()

	rep, err = c.ReadWithin(30 * time.Second)
	if err != nil {
		return f.failed("STOR "+name+" end", err)
	}

	return f.outcome("STOR "+name+" end", rep, rep.Code == 226)
}

// pause waits after a refusal.
func (f *filler) pause(reason string) {
	if reason != "" {
		_ = sleep(f.ctx, refusedPause)
	}
}

// boxFigures is the drop box on disk at one moment.
type boxFigures struct {
	entries int   // files and folders, hidden parts of uploads in flight included
	parts   int   // hidden parts (.wharf-upload-*)
	bytes   int64 // sizes of the files, parts included
	alloc   int64 // blocks allocated to all of it, incoming/ itself included
	depth   int   // the deepest folder's level below incoming/
}

// measureBox walks dir (incoming/).
func measureBox(dir string) (boxFigures, error) {
	var b boxFigures

	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // a part removed meanwhile: only when wharf is not frozen
			}

			return err
		}

		info, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}

			return err
		}

		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			b.alloc += st.Blocks * 512
		}

		if p == dir {
			return nil
		}

		b.entries++
		if strings.HasPrefix(d.Name(), ".wharf-upload-") {
			b.parts++
		}

		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			b.depth = max(b.depth, strings.Count(rel, string(filepath.Separator))+1)
		case d.Type().IsRegular():
			b.bytes += info.Size()
		}

		return nil
	})

	return b, err
}

// freeBytes is the free space of the filesystem holding path, and its block size.
func freeBytes(path string) (free, block int64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, err
	}

	return int64(st.Bfree) * st.Bsize, st.Bsize, nil //nolint:gosec // a free block count fits in int64
}

// frozen runs fn while wharf is stopped (SIGSTOP) and every one of its
// threads has stopped, so fn sees the disk between two of wharf's system
// calls: no write, create, rename or truncate half done. It returns how long
// wharf stood still. The signals go through os.Process, which holds a pidfd:
// never to another process that took the ID of a wharf that ended.
func (w *wharf) frozen(fn func()) (time.Duration, error) {
	if err := w.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return 0, err
	}

	start := time.Now()
	defer func() { _ = w.cmd.Process.Signal(syscall.SIGCONT) }()

	pid := w.pid()

	for {
		stopped, err := allStopped(pid)
		if err != nil {
			return 0, err
		}

		if stopped {
			break
		}

		if time.Since(start) > time.Second {
			return 0, errors.New("wharf's threads did not all stop within 1 s of SIGSTOP")
		}

		time.Sleep(100 * time.Microsecond)
	}

	fn()

	return time.Since(start), nil
}

// allStopped reports whether every thread of pid is stopped (state T).
func allStopped(pid int) (bool, error) {
	tids, err := procstat.Threads(pid)
	if err != nil {
		return false, err
	}

	for _, tid := range tids {
		st, err := procstat.ReadTaskStat(pid, tid)
		if err != nil {
			continue // a thread that just ended
		}

		if st.State != 'T' && st.State != 't' {
			return false, nil
		}
	}

	return true, nil
}

// boxSampler measures the box, wharf frozen, every sampleEvery while a flood
// runs, and keeps the highest figures and the least free space.
type boxSampler struct {
	w     *wharf
	dir   string
	free  int64 // the filesystem's free space before the flood
	block int64 // its block size

	mu        sync.Mutex // the figures below, which the checks read once sampling has halted
	samples   int
	high      boxFigures
	leastFree int64
	longest   time.Duration // longest freeze
	err       error

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startSampler(w *wharf) (*boxSampler, error) {
	s := &boxSampler{w: w, dir: filepath.Join(w.pub, "incoming"), stop: make(chan struct{}), done: make(chan struct{})}

	free, block, err := freeBytes(s.dir)
	if err != nil {
		return nil, err
	}

	s.free, s.leastFree, s.block = free, free, block

	go func() {
		defer close(s.done)

		for {
			s.sample()

			select {
			case <-s.stop:
				return
			case <-time.After(sampleEvery):
			}
		}
	}()

	return s, nil
}

func (s *boxSampler) sample() {
	var (
		b          boxFigures
		free       int64
		mErr, fErr error
	)

	took, err := s.w.frozen(func() {
		b, mErr = measureBox(s.dir)
		free, _, fErr = freeBytes(s.dir)
	})

	s.mu.Lock()
	defer s.mu.Unlock()

	if err = errors.Join(err, mErr, fErr); err != nil {
		if s.err == nil {
			s.err = err
		}

		return
	}

	s.samples++
	s.longest = max(s.longest, took)
	s.leastFree = min(s.leastFree, free)
	s.high.entries = max(s.high.entries, b.entries)
	s.high.parts = max(s.high.parts, b.parts)
	s.high.bytes = max(s.high.bytes, b.bytes)
	s.high.alloc = max(s.high.alloc, b.alloc)
	s.high.depth = max(s.high.depth, b.depth)
}

// peak is the highest figures sampled so far, and how many samples.
func (s *boxSampler) peak() (boxFigures, int) {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.high, s.samples
}

// halt stops the sampling; safe to call twice. A scenario defers it after
// wharf's stop, so that it runs first: wharf is never frozen once stopping.
func (s *boxSampler) halt() {
	s.once.Do(func() { close(s.stop) })
	<-s.done
}

// finish takes a last sample, the flood over, and stops.
func (s *boxSampler) finish() boxFigures {
	s.halt()
	s.sample()

	last, err := measureBox(s.dir)
	if err != nil && s.err == nil {
		s.err = err
	}

	return last
}

// checkBox records the checks every phase makes of the box: it stayed
// within the quota, the entry and the depth limits in every sample, and so
// did the blocks it takes on disk. The filesystem's free space is printed
// for the record: the filesystem is shared, so what other programs write
// meanwhile shows in it too.
func (s *boxSampler) checkBox(r *result, phase string, w *wharf, l *boxLimits, last boxFigures) {
	h := s.high
	r.check(phase+": bytes in incoming/, hidden parts of uploads in flight included", s.err == nil && h.bytes <= l.quota,
		fmt.Sprintf("≤ upload_quota %s, to the byte", sizeOf(l.quota)),
		"at most %d in %d samples taken with wharf frozen (the longest freeze %s); %d at the end%s",
		h.bytes, s.samples, ms(s.longest), last.bytes, errNote(errText(s.err)))
	r.check(phase+": files and folders in incoming/, hidden parts included", s.err == nil && h.entries <= l.maxFiles,
		fmt.Sprintf("≤ upload_max_files %d", l.maxFiles),
		"at most %d (%d of them parts in flight at once at most); %d at the end", h.entries, h.parts, last.entries)
	r.check(phase+": deepest folder below incoming/", s.err == nil && h.depth <= l.maxDepth,
		fmt.Sprintf("≤ upload_max_depth %d", l.maxDepth), "%d", h.depth)

	slack := int64(blocksPerEntry*(l.maxFiles+1)) * s.block
	r.check(phase+": blocks incoming/ takes on disk", s.err == nil && h.alloc <= l.quota+slack,
		fmt.Sprintf("≤ upload_quota + %d blocks of %d bytes an entry = %s", blocksPerEntry, s.block, kib(l.quota+slack)),
		"at most %s for %s of files", kib(h.alloc), kib(h.bytes))

	logSize := int64(0)
	if st, err := os.Stat(filepath.Join(w.dir, "wharf.log")); err == nil {
		logSize = st.Size()
	}

	r.note(phase+": the filesystem's free space (statfs)",
		"%s free before; dropped by %s at most during the flood, of which wharf's own: incoming/'s blocks and a %s log (the rest is other programs')",
		gib(s.free), kib(s.free-s.leastFree), kib(logSize))
}

// runDropboxFill is scenario 13.
func runDropboxFill(ctx context.Context, s *suite, r *result) error {
	pay := make([]byte, overFile)
	_, _ = rand.Read(pay)

	if err := fillRates(ctx, s, r, pay); err != nil {
		return err
	}

	return fillBox(ctx, s, r, pay)
}

// fillSettings is an instance for a flood: 2 sessions from each of 8
// addresses plus the helpers each need a passive port.
func fillSettings(l *boxLimits) settings {
	st := defaults()
	st.idleTimeout, st.loginTimeout, st.dataTimeout = "30s", "30s", "10s"
	st.passivePorts = 64
	st.dropBox = l

	return st
}

// fillRates is phase 1: the per-address limits stop 8 addresses, then a
// fresh address uploads.
func fillRates(ctx context.Context, s *suite, r *result, pay []byte) error {
	l := fillLimits(true)

	w, err := s.start(ctx, "dropbox-rates", fillSettings(l))
	if err != nil {
		return err
	}
	defer w.stop()

	sm, err := startSampler(w)
	if err != nil {
		return err
	}
	defer sm.halt()

	t := newFillTally()
	start := time.Now()
	until := start.Add(rateFlood)

	var wg sync.WaitGroup
	for a := range fillAddrs {
		addr := 2 + a
		entries := a >= fillAddrs/2 // 127.0.0.6-9 make entries, 127.0.0.2-5 send bytes

		for k := range fillSessions {
			wg.Go(func() {
				f := &filler{ctx: ctx, w: w, t: t, addr: addr}
				defer f.leave()

				for i := 0; time.Now().Before(until) && ctx.Err() == nil; i++ {
					var reason string

					switch {
					case entries && i%2 == 0:
						reason = f.mkd(fmt.Sprintf("/incoming/a%d-s%d-d%d", addr, k, i))
					case entries:
						reason = f.stor(fmt.Sprintf("/incoming/a%d-s%d-f%d.txt", addr, k, i), pay[:rateFile])
					default:
						reason = f.stor(fmt.Sprintf("/incoming/a%d-s%d-f%d.bin", addr, k, i), pay[i%8*1024:][:bytesFile])
						if f.row >= leaveAfter {
							f.leave()
						}
					}

					f.pause(reason)
				}
			})
		}
	}

	wg.Wait()
	span := time.Since(start)
	last := sm.finish()

	// Per address, as the names tell (a<address>-...).
	dir := filepath.Join(w.pub, "incoming")
	perAddr, err := perAddress(dir)
	if err != nil {
		return err
	}

	rateBound := int(float64(l.rate) * (1 + span.Minutes()))
	bytesBound := int64(float64(l.bytesPerHour) * (1 + span.Hours()))

	var (
		mostEntries, mostAdmitted int
		mostBytes, leastBytes     int64 = 0, math.MaxInt64
		notBitten                 []string
	)

	for a := range fillAddrs {
		addr := 2 + a
		u := perAddr[addr]
		mostEntries = max(mostEntries, u.entries)
		mostAdmitted = max(mostAdmitted, t.admitted[addr])
		mostBytes = max(mostBytes, u.bytes)

		if a < fillAddrs/2 {
			leastBytes = min(leastBytes, u.bytes)
		} else if t.admitted[addr] < l.rate {
			notBitten = append(notBitten, fmt.Sprintf("127.0.0.%d made only %d entries", addr, t.admitted[addr]))
		}
	}

	r.note(fmt.Sprintf("phase 1: %d addresses (127.0.0.2-%d, %d sessions each) flood for %s", fillAddrs, 1+fillAddrs, fillSessions, rateFlood),
		"127.0.0.2-5 upload %s files, 127.0.0.6-9 alternate MKD and %s files; upload_rate %d, upload_bytes_per_hour %s; "+
			"%d refusals for rate (%d of them the 421 that closes a session), %d for bytes, over %d sessions",
		kib(bytesFile), kib(rateFile), l.rate, sizeOf(l.bytesPerHour), t.refused[reasonRate], t.closed, t.refused[reasonBytes], t.sessions)
	r.check("phase 1: files and folders one address made", mostEntries <= rateBound && mostAdmitted <= rateBound && len(notBitten) == 0,
		fmt.Sprintf("≤ upload_rate × (1 + %s / 1 min) = %d (a full minute's allowance at once, then its refill), and each entry filler used its %d",
			ms(span), rateBound, l.rate),
		"at most %d on disk and %d admitted (257 to MKD, 150 to STOR) from one address%s", mostEntries, mostAdmitted, errNote(strings.Join(notBitten, "; ")))
	r.check("phase 1: bytes one address stored", mostBytes <= bytesBound && leastBytes > l.bytesPerHour-bytesFile,
		fmt.Sprintf("≤ upload_bytes_per_hour × (1 + %s / 1 h) = %d, and each byte filler within one file of it", ms(span), bytesBound),
		"%d at most, %d at least of 127.0.0.2-5", mostBytes, leastBytes)

	if err := checkReplies(ctx, r, "phase 1", w, t); err != nil {
		return err
	}

	sm.checkBox(r, "phase 1", w, l, last)

	// A fresh address is not held back by the others' allowances.
	fresh, ok, err := freshUpload(ctx, w, pay[:freshFile])
	if err != nil {
		return err
	}

	r.check("phase 1: a fresh address (127.0.0.10) after the flood", ok, "MKD 257, STOR 226, the file intact on disk", "%s", fresh)

	return nil
}

// freshUpload makes a folder and uploads data into it from 127.0.0.10.
func freshUpload(ctx context.Context, w *wharf, data []byte) (string, bool, error) {
	c, err := login(ctx, localIP(fillFresh), w.addr, "anonymous", "legit@example.com")
	if err != nil {
		return "", false, err
	}
	defer quit(c)

	mkd, err := c.Cmd("MKD /incoming/fresh")
	if err != nil {
		return "", false, err
	}

	f := &filler{ctx: ctx, w: w, t: newFillTally(), addr: fillFresh, c: c}
	reason := f.stor("/incoming/fresh/legit.bin", data)

	got, err := fileSHA256(filepath.Join(w.pub, "incoming", "fresh", "legit.bin"))
	intact := err == nil && got == sha256.Sum256(data)

	return fmt.Sprintf("MKD: %v; STOR: %v; on disk intact: %v%s", mkd, f.last, intact, errNote(f.t.first)),
		mkd.Code == 257 && reason == "" && intact, nil
}

// fillBox is phase 2: with no per-address limit, 8 addresses meet the
// depth limit, fill the quota, then the entries.
func fillBox(ctx context.Context, s *suite, r *result, pay []byte) error {
	l := fillLimits(false)

	w, err := s.start(ctx, "dropbox-fill", fillSettings(l))
	if err != nil {
		return err
	}
	defer w.stop()

	sm, err := startSampler(w)
	if err != nil {
		return err
	}
	defer sm.halt()

	t := newFillTally()
	dir := filepath.Join(w.pub, "incoming")

	// Depth: each session nests folders to upload_max_depth, then one more.
	var depthRefused, leaves int
	var mu sync.Mutex

	fillAll(ctx, w, t, func(f *filler, base string) {
		elems := []string{"/incoming", base + "-deep"}
		refused := 0

		for lvl := 1; lvl <= l.maxDepth+1; lvl++ {
			if lvl > 1 {
				elems = append(elems, "x"+strconv.Itoa(lvl))
			}

			if f.mkd(path.Join(elems...)) == reasonDepth {
				refused++
			}
		}

		deepest := path.Join(elems...)
		if f.stor(deepest+"/f.txt", pay[:rateFile]) == reasonDepth {
			refused++
		}

		leaf := f.stor(path.Dir(deepest)+"/leaf.txt", pay[:rateFile]) == ""

		mu.Lock()
		defer mu.Unlock()

		depthRefused += refused
		if leaf {
			leaves++
		}
	})

	sessions := fillAddrs * fillSessions
	r.check("phase 2: folders nested past upload_max_depth", depthRefused == 2*sessions && leaves == sessions,
		fmt.Sprintf("each of %d sessions: MKD at level %d and STOR into it 552 \"Too deep\", a file at level %d lands", sessions, l.maxDepth+1, l.maxDepth),
		"%d of %d refused for depth, %d of %d files at level %d landed", depthRefused, 2*sessions, leaves, sessions, l.maxDepth)

	// Bytes: 320 KiB uploads, over max_upload_size, and 192 KiB ones in
	// turn, sent 32 KiB at a time, until each session has been refused for
	// the quota three times. The first ones, 16 × 256 KiB at most in flight,
	// cannot meet the quota: they are all refused for size.
	start := time.Now()
	fillAll(ctx, w, t, func(f *filler, base string) {
		f.piece = 32 << 10
		quota := 0
		for i := 0; (quota < 3 || time.Since(start) < fillHold) && time.Since(start) < fillCap && ctx.Err() == nil; i++ {
			var reason string
			if i%2 == 0 {
				reason = f.stor(fmt.Sprintf("/incoming/%s-over%d.bin", base, i), pay[:overFile])
			} else {
				reason = f.stor(fmt.Sprintf("/incoming/%s-big%d.bin", base, i), pay[i%16*1024:][:bigFile])
			}

			if reason == reasonQuota {
				quota++
			}

			f.pause(reason)
		}
	})
	bytesTook := time.Since(start)

	full, err := measureBox(dir)
	if err != nil {
		return err
	}

	flooded, samples := sm.peak()

	topped, err := topUp(ctx, w, t, l.quota-full.bytes, l.maxUploadSize, pay)
	if err != nil {
		return err
	}

	after, err := measureBox(dir)
	if err != nil {
		return err
	}

	overLanded, err := filepath.Glob(filepath.Join(dir, "*-over*"))
	if err != nil {
		return err
	}

	r.check("phase 2: the quota, filled by 16 sessions (8 in TYPE A) with 192 KiB and 320 KiB uploads", after.bytes == l.quota && topped.Code == 552,
		fmt.Sprintf("the box ends at upload_quota %d to the byte: the bytes left land, one byte more gets 552", l.quota),
		"%d bytes after %s of flood (at most %d in %d frozen samples so far; %d refusals for quota, %d for size); the %d bytes left landed: %d; one byte more: %v",
		full.bytes, ms(bytesTook), flooded.bytes, samples, t.refused[reasonQuota], t.refused[reasonSize], l.quota-full.bytes, after.bytes, topped)
	r.check("phase 2: uploads over max_upload_size", t.refused[reasonSize] >= sessions && len(overLanded) == 0,
		fmt.Sprintf("552 when they pass %s (the first of each session at least), nothing left under their names", kib(l.maxUploadSize)),
		"%d refused for size, %d landed", t.refused[reasonSize], len(overLanded))

	// Entries: MKD and empty STOR until each session has been refused for
	// files three times.
	start = time.Now()
	fillAll(ctx, w, t, func(f *filler, base string) {
		files := 0
		for i := 0; (files < 3 || time.Since(start) < fillHold/2) && time.Since(start) < fillCap && ctx.Err() == nil; i++ {
			var reason string
			if i%2 == 0 {
				reason = f.mkd(fmt.Sprintf("/incoming/%s-d%d", base, i))
			} else {
				reason = f.stor(fmt.Sprintf("/incoming/%s-e%d.txt", base, i), nil)
			}

			if reason == reasonFiles {
				files++
			}

			f.pause(reason)
		}
	})
	entriesTook := time.Since(start)

	last := sm.finish()

	one := &filler{ctx: ctx, w: w, t: t, addr: 2}
	more := one.mkd("/incoming/one-more")
	one.leave()

	r.check("phase 2: files and folders, filled by 16 sessions with MKD and empty STOR", last.entries == l.maxFiles && more == reasonFiles,
		fmt.Sprintf("the box ends at upload_max_files %d exactly, and one MKD more gets 552", l.maxFiles),
		"%d entries after %s of flood; %d refusals for files, %d for quota in all; one MKD more: %v",
		last.entries, ms(entriesTook), t.refused[reasonFiles], t.refused[reasonQuota], one.last)

	// The box is full for everyone: quota and entries are global.
	fresh := &filler{ctx: ctx, w: w, t: t, addr: fillFresh}
	freshReason := fresh.stor("/incoming/fresh.bin", pay[:rateFile])
	fresh.leave()

	r.check("phase 2: a fresh address (127.0.0.10) on the full box", freshReason == reasonFiles,
		"552 to STOR: the box's limits hold for everyone", "%v", fresh.last)

	if err := checkReplies(ctx, r, "phase 2", w, t); err != nil {
		return err
	}

	sm.checkBox(r, "phase 2", w, l, last)

	temps, parts, err := tempFiles(dir)
	r.check("phase 2: hidden parts left", err == nil && len(temps)+len(parts) == 0, "none", "%d%s", len(temps)+len(parts), errNote(errText(err)))

	return nil
}

// fillAll runs body once on each of fillSessions sessions from each of the 8
// addresses, all at once; base names the session in its uploads. The second
// session of each address uploads in TYPE A.
func fillAll(ctx context.Context, w *wharf, t *fillTally, body func(f *filler, base string)) {
	var wg sync.WaitGroup

	for a := range fillAddrs {
		for k := range fillSessions {
			wg.Go(func() {
				f := &filler{ctx: ctx, w: w, t: t, addr: 2 + a, ascii: k == 1}
				defer f.leave()

				body(f, fmt.Sprintf("a%d-s%d", 2+a, k))
			})
		}
	}

	wg.Wait()
}

// topUp uploads the bytes left below the quota, in files of at most most
// bytes, then one byte more, and returns the reply to that byte.
func topUp(ctx context.Context, w *wharf, t *fillTally, left, most int64, pay []byte) (ftpraw.Reply, error) {
	f := &filler{ctx: ctx, w: w, t: t, addr: 2}
	defer f.leave()

	for i := 0; left > 0; i++ {
		n := min(left, most)
		if reason := f.stor(fmt.Sprintf("/incoming/topup%d.bin", i), pay[:n]); reason != "" {
			return ftpraw.Reply{}, fmt.Errorf("upload of the %d bytes left: %v", n, f.last)
		}

		left -= n
	}

	f.stor("/incoming/topup-byte.bin", pay[:1])

	return f.last, nil
}

// checkReplies checks the refusals the flooders read against
// wharf_uploads_refused_total, reason by reason.
func checkReplies(ctx context.Context, r *result, phase string, w *wharf, t *fillTally) error {
	m, err := w.metrics(ctx)
	if err != nil {
		return err
	}

	var seen, counted []string

	match := true
	for _, reason := range fillReasons {
		n := m[fmt.Sprintf("wharf_uploads_refused_total{reason=%q}", reason)]
		if int(n) != t.refused[reason] {
			match = false
		}

		seen = append(seen, fmt.Sprintf("%s %d", reason, t.refused[reason]))
		counted = append(counted, fmt.Sprintf("%s %.0f", reason, n))
	}

	r.check(phase+": refusals' replies", t.wrongCode == 0 && t.unexpected == 0,
		"552 for quota, files, depth, size; 450 for rate, bytes (421 for a session's tenth rate refusal in a row); nothing else",
		"%d with another code, %d other replies or errors%s", t.wrongCode, t.unexpected, errNote(t.first))
	r.check(phase+": wharf_uploads_refused_total", match, "equals the refusals the clients read, reason by reason",
		"clients read %s; wharf counted %s", strings.Join(seen, ", "), strings.Join(counted, ", "))

	return nil
}

// addrUse is what one address left in the box.
type addrUse struct {
	entries int
	bytes   int64
}

// perAddress sums the box by the address in each top-level name ("a7-...").
func perAddress(dir string) (map[int]addrUse, error) {
	out := make(map[int]addrUse)

	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}

		rel, _ := filepath.Rel(dir, p)
		top, _, _ := strings.Cut(rel, string(filepath.Separator))
		num, _, _ := strings.Cut(strings.TrimPrefix(top, "a"), "-")

		addr, err := strconv.Atoi(num)
		if err != nil || !strings.HasPrefix(top, "a") {
			return nil //nolint:nilerr // not a filler's name
		}

		u := out[addr]
		u.entries++

		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}

			u.bytes += info.Size()
		}

		out[addr] = u

		return nil
	})

	return out, err
}

// sizeOf is n bytes as wharf's replies write a size: "8 MiB", "512 KiB".
func sizeOf(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	i := 0

	for n >= 1024 && n%1024 == 0 && i < len(units)-1 {
		n /= 1024
		i++
	}

	return strconv.FormatInt(n, 10) + " " + units[i]
}

// gib formats a byte count in GiB.
func gib(n int64) string {
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
