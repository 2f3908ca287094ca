package server

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/afero"
	"go.uber.org/zap"

	"wharf/vfs"
)

// The drop box's limits (Options.DropBox) are kept by the session's
// filesystem: dropBoxFs wraps vfs.DropBox, so every new file and folder, and
// every byte written to one, is charged to the box as a whole (one account per
// upload_dir on disk, shared by all sessions) and to the client's address
// before it happens. A refusal is a *limitError, whose code and words the
// client reads (see fixReply).
const (
	// rescanAfter is how soon after a scan a refusal for space or entries
	// scans the box again: an operator may have emptied it by hand.
	rescanAfter = 10 * time.Second
	// rescanEvery is how old a scan may grow before the next new entry scans
	// again, to see what others (an operator, an account with write access to
	// the folder) added or removed.
	rescanEvery = 10 * time.Minute
	// scanLimit bounds a scan when upload_max_files does not: past it, the
	// figures are lower bounds, and the log says so.
	scanLimit = 1_000_000
	// maxRateAddrs bounds the table of client addresses the rates remember;
	// past it, the address seen least recently is forgotten.
	maxRateAddrs = 16384
	// maxRateRefusals is how many rate refusals in a row a session gets
	// before the next closes it with 421.
	maxRateRefusals = 10
)

// The reasons of wharf_uploads_refused_total.
const (
	reasonQuota = "quota" // upload_quota: the box's bytes
	reasonFiles = "files" // upload_max_files: the box's files and folders
	reasonDepth = "depth" // upload_max_depth: folders nested below the box
	reasonRate  = "rate"  // upload_rate: new entries per minute from an address
	reasonBytes = "bytes" // upload_bytes_per_hour: bytes per hour from an address
	reasonSize  = "size"  // max_upload_size: one upload's bytes
)

var refusalReasons = []string{reasonQuota, reasonFiles, reasonDepth, reasonRate, reasonBytes, reasonSize}

// limitError refuses a new entry, or cuts an upload, at a drop-box limit.
// Its text is the whole reply the client reads: 552 for space, entries and
// depth (RFC 959: "exceeded storage allocation"), 450 for a rate (try again
// later).
type limitError struct {
	code   int    // the reply code: 552 or 450
	reason string // the label of wharf_uploads_refused_total
	text   string // the reply's text
}

func (e *limitError) Error() string { return e.text }

// Unwrap makes a 552 refusal an ftpserver.ErrStorageExceeded, which the
// engine answers with 552 too.
func (e *limitError) Unwrap() error {
	if e.code == ftpserver.StatusActionAborted {
		return ftpserver.ErrStorageExceeded
	}

	return nil
}

// dropBoxes keeps the drop-box limits of one server: the accounts of its drop
// boxes, by folder on disk, and the rates of client addresses. Everything in
// it is under mu.
type dropBoxes struct {
	limits  DropBoxLimits
	log     *zap.Logger
	refused *prometheus.CounterVec

	mu       sync.Mutex
	released sync.Cond        // a cut upload gave its bytes back
	now      func() time.Time // the clock of the rates and of rescans
	boxes    map[string]*box
	addrs    map[string]*list.Element // of lru, each an *addrRate
	lru      list.List                // most recently seen first
}

func newDropBoxes(limits DropBoxLimits, log *zap.Logger, refused *prometheus.CounterVec) *dropBoxes {
	d := &dropBoxes{
		limits:  limits,
		log:     log,
		refused: refused,
		now:     time.Now,
		boxes:   make(map[string]*box),
		addrs:   make(map[string]*list.Element),
	}
	d.released.L = &d.mu

	return d
}

// box is the account of one drop box: what it holds on disk, plus the uploads
// in flight. Its fields but disk and init are under dropBoxes.mu.
type box struct {
	disk string    // the folder on disk
	init sync.Once // the first scan

	bytes           int64 // on disk and in flight
	entries         int   // files and folders, on disk and in flight
	inflightBytes   int64
	inflightEntries int
	releasing       int64          // bytes of cut uploads being truncated: still on disk
	names           map[string]int // uploads in flight, by path below the box: scans skip them
	changes         uint64         // moved on before and after each change a scan could half see
	scanned         time.Time
	scanning        bool
}

// box returns the account of the drop box at disk, made on first use.
func (d *dropBoxes) box(disk string) *box {
	d.mu.Lock()
	defer d.mu.Unlock()

	b := d.boxes[disk]
	if b == nil {
		b = &box{disk: disk, names: make(map[string]int)}
		d.boxes[disk] = b
	}

	return b
}

// boxScan is what a scan of a drop box found.
type boxScan struct {
	files, folders int
	bytes          int64
	complete       bool // the scan saw every entry (it stops at its bound)
	err            error
}

// scan walks the box on disk and takes what it found as the box's figures,
// plus the uploads in flight. A scan sees the disk while uploads go on: if an
// entry was created, committed or given back meanwhile, the figures it saw
// may be half right, and the box keeps its own. Hidden parts of uploads
// (vfs.TempPrefix) are not counted: those in flight are counted as they are
// written, and a crash's leftovers are removed at start (issue 12, item 8).
func (d *dropBoxes) scan(b *box, first bool) {
	d.mu.Lock()
	if b.scanning {
		d.mu.Unlock()

		return
	}

	b.scanning = true
	gen := b.changes
	skip := make(map[string]bool, len(b.names))
	for name := range b.names {
		skip[name] = true
	}

	bound := scanLimit
	if d.limits.MaxFiles > 0 {
		bound = min(bound, d.limits.MaxFiles+1) // enough to know the box is full
	}
	d.mu.Unlock()

	began := time.Now()
	found := walkBox(b.disk, skip, bound)
	took := time.Since(began)

	d.mu.Lock()
	b.scanning = false
	b.scanned = d.now()
	applied := b.changes == gen
	oldBytes, oldEntries := b.bytes, b.entries
	if applied {
		b.bytes = found.bytes + b.inflightBytes
		b.entries = found.files + found.folders + b.inflightEntries
	}
	d.mu.Unlock()

	fields := []zap.Field{
		zap.String("path", b.disk), zap.Int("files", found.files), zap.Int("folders", found.folders),
		zap.Int64("bytes", found.bytes), zap.Duration("duration", took.Round(time.Microsecond)),
	}

	switch {
	case found.err != nil:
		d.log.Warn("drop box scan failed", append(fields, zap.Error(found.err))...)
	case !found.complete:
		d.log.Warn("drop box scan stopped at its bound: the limits count only what it found", append(fields, zap.Int("bound", bound))...)
	case first:
		d.log.Info("drop box scanned", fields...)
	case !applied:
		d.log.Debug("drop box rescan discarded: uploads changed it meanwhile", fields...)
	case oldBytes != found.bytes || oldEntries != found.files+found.folders:
		d.log.Info("drop box rescanned: changed by others", append(fields,
			zap.Int64("counted_bytes", oldBytes), zap.Int("counted_entries", oldEntries))...)
	default:
		d.log.Debug("drop box rescanned", fields...)
	}
}

// walkBox counts the files, folders and bytes below disk without following
// links, up to bound entries, leaving out hidden upload parts and the paths in
// skip.
func walkBox(disk string, skip map[string]bool, bound int) boxScan {
	found := boxScan{complete: true}

	root, err := os.OpenRoot(disk)
	if err != nil {
		found.err = err

		return found
	}
	defer func() { _ = root.Close() }()

	_ = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			if found.err == nil {
				found.err = err
			}

			return nil
		case p == ".":
			return nil
		case strings.HasPrefix(d.Name(), vfs.TempPrefix) || skip[p]:
			if d.IsDir() {
				return fs.SkipDir
			}

			return nil
		case found.files+found.folders >= bound:
			found.complete = false

			return fs.SkipAll
		case d.IsDir():
			found.folders++

			return nil
		}

		found.files++
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				found.bytes += info.Size()
			}
		}

		return nil
	})

	return found
}

// addrRate is what the rates remember of one client address.
type addrRate struct {
	key   string
	files bucket // new entries, upload_rate a minute
	bytes bucket // bytes, upload_bytes_per_hour an hour
}

// bucket is a token bucket: it holds up to size tokens and gains size of
// them per period, continuously.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) fill(size float64, period time.Duration, now time.Time) {
	if now.After(b.last) {
		b.tokens = min(size, b.tokens+size*float64(now.Sub(b.last))/float64(period))
		b.last = now
	}
}

// until is how long the bucket takes to hold n tokens.
func (b *bucket) until(n, size float64, period time.Duration) time.Duration {
	if b.tokens >= n {
		return 0
	}

	return time.Duration((n - b.tokens) / size * float64(period))
}

// addrLocked returns the rates of the address key, filled up to now; an
// address not seen yet (or forgotten) starts with full buckets. d.mu is held.
func (d *dropBoxes) addrLocked(key string, now time.Time) *addrRate {
	var a *addrRate

	if el, ok := d.addrs[key]; ok {
		d.lru.MoveToFront(el)
		a, _ = el.Value.(*addrRate)
	} else {
		if len(d.addrs) >= maxRateAddrs {
			oldest := d.lru.Back()
			d.lru.Remove(oldest)
			if o, ok := oldest.Value.(*addrRate); ok {
				delete(d.addrs, o.key)
			}
		}

		a = &addrRate{
			key:   key,
			files: bucket{tokens: float64(d.limits.FilesPerMinute), last: now},
			bytes: bucket{tokens: float64(d.limits.BytesPerHour), last: now},
		}
		d.addrs[key] = d.lru.PushFront(a)
	}

	a.files.fill(float64(d.limits.FilesPerMinute), time.Minute, now)
	a.bytes.fill(float64(d.limits.BytesPerHour), time.Hour, now)

	return a
}

// giveBackLocked returns tokens to an address still remembered. d.mu is held.
func (d *dropBoxes) giveBackLocked(key string, files int, bytes int64) {
	el, ok := d.addrs[key]
	if !ok {
		return
	}

	a, _ := el.Value.(*addrRate)
	a.files.tokens = min(float64(d.limits.FilesPerMinute), a.files.tokens+float64(files))
	a.bytes.tokens = min(float64(d.limits.BytesPerHour), a.bytes.tokens+float64(bytes))
}

// The refusals, in words a person understands.

func (d *dropBoxes) quotaError() *limitError {
	return &limitError{552, reasonQuota,
		fmt.Sprintf("The drop box is full (%s): try again after the operator empties it.", sizeText(d.limits.Quota))}
}

func (d *dropBoxes) filesError() *limitError {
	return &limitError{552, reasonFiles,
		fmt.Sprintf("The drop box holds too many files and folders (%d): try again after the operator empties it.", d.limits.MaxFiles)}
}

func (d *dropBoxes) depthError(dir string) *limitError {
	return &limitError{552, reasonDepth,
		fmt.Sprintf("Too deep: folders in the drop box nest at most %d levels below %s.", d.limits.MaxDepth, dir)}
}

func rateError(wait time.Duration) *limitError {
	return &limitError{450, reasonRate,
		fmt.Sprintf("Too many uploads from your address: try again in %s.", waitText(wait))}
}

func (d *dropBoxes) bytesError(wait time.Duration) *limitError {
	return &limitError{450, reasonBytes,
		fmt.Sprintf("Too much uploaded from your address this hour (%s): try again in %s.", sizeText(d.limits.BytesPerHour), waitText(wait))}
}

// sizeText is n bytes in binary units: "10 GiB", "1.5 MiB", "1000 B".
func sizeText(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0

	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}

	if i == 0 {
		return strconv.FormatInt(n, 10) + " B"
	}

	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0") + " " + units[i]
}

// waitText is a wait rounded up: seconds up to two minutes, then minutes.
func waitText(d time.Duration) string {
	if d < 2*time.Minute {
		return strconv.FormatInt(max(1, int64((d+time.Second-1)/time.Second)), 10) + " s"
	}

	return strconv.FormatInt(int64((d+time.Minute-1)/time.Minute), 10) + " min"
}

// dropBoxFs returns the filesystem of an anonymous session with a drop box
// (inner, vfs.DropBox below dir) bounded by Options.DropBox.
func (s *Server) dropBoxFs(si *sessionInfo, v *verifiedLogin, inner afero.Fs, dir string) afero.Fs {
	d := s.boxes
	l := d.limits
	b := &boxFs{
		Fs:      inner,
		d:       d,
		si:      si,
		dir:     dir,
		key:     si.ctl.gc.key,
		atomic:  s.opts.AtomicUploads,
		metered: l.Quota > 0 || l.BytesPerHour > 0,
	}
	b.root, _ = v.root.(*vfs.Fs)

	if l.Quota > 0 || l.MaxFiles > 0 {
		disk := filepath.Join(v.acct.Home, filepath.FromSlash(v.acct.UploadDir))
		if abs, err := filepath.Abs(disk); err == nil {
			disk = abs
		}

		b.box = d.box(disk)
	}

	return b
}

// boxFs is a session's drop box with its limits: new entries below dir are
// charged before they are made and given back if they fail; files are
// wrapped to charge each byte before it is written.
type boxFs struct {
	afero.Fs // vfs.DropBox: what may be created at all

	d       *dropBoxes
	si      *sessionInfo
	box     *box    // nil: no limit on the box as a whole
	root    *vfs.Fs // the session's root, to remove a cut upload written in place
	dir     string  // the box's virtual path
	key     string  // the client's address, as rates count it (addrKey)
	atomic  bool    // uploads go to a hidden part first (Options.AtomicUploads)
	metered bool    // bytes are limited: files give up splice to be counted as written

	refusals atomic.Int32  // rate refusals in a row
	logged   atomic.Uint32 // reasons already logged at Warn, one bit each
}

// locate returns name's clean virtual path, its path below the box ("" for
// the box itself), and whether it is in the box at all.
func (b *boxFs) locate(name string) (string, string, bool) {
	p := path.Clean("/" + name)

	switch {
	case b.dir == "/":
		return p, strings.TrimPrefix(p, "/"), true
	case p == b.dir:
		return p, "", true
	case strings.HasPrefix(p, b.dir+"/"):
		return p, p[len(b.dir)+1:], true
	}

	return p, "", false
}

// depth is how many folders deep rel is below the box: 0 for the box
// itself ("", or "." for the folder of a file at its top).
func depth(rel string) int {
	if rel == "" || rel == "." {
		return 0
	}

	return strings.Count(rel, "/") + 1
}

func (b *boxFs) Create(name string) (afero.File, error) {
	return b.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile charges a new file (STOR, STOU) to the box and the address.
func (b *boxFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	p, rel, in := b.locate(name)
	if !in || rel == "" || flag&os.O_CREATE == 0 {
		return b.Fs.OpenFile(name, flag, perm) //nolint:wrapcheck // the client reads the vfs error
	}

	if err := b.begin(p, path.Dir(rel), true); err != nil {
		return nil, err
	}

	f, err := b.Fs.OpenFile(p, flag, perm)
	b.end(rel, true, err == nil)

	if err != nil {
		return nil, err //nolint:wrapcheck // the client reads the vfs error
	}

	bf := &boxFile{File: f, fs: b, path: p, rel: rel}
	if !b.metered {
		return &splicingFile{bf}, nil
	}

	return bf, nil
}

// Mkdir charges a new folder (MKD) to the box and the address.
func (b *boxFs) Mkdir(name string, perm os.FileMode) error {
	p, rel, in := b.locate(name)
	if !in || rel == "" {
		return b.Fs.Mkdir(name, perm) //nolint:wrapcheck // the client reads the vfs error
	}

	if err := b.begin(p, rel, false); err != nil {
		return err
	}

	err := b.Fs.Mkdir(p, perm)
	b.end(rel, false, err == nil)

	return err //nolint:wrapcheck // the client reads the vfs error
}

// MkdirAll makes each missing folder of name with Mkdir, so each is charged.
func (b *boxFs) MkdirAll(name string, perm os.FileMode) error {
	p, rel, in := b.locate(name)
	if !in || rel == "" {
		return b.Fs.MkdirAll(name, perm) //nolint:wrapcheck // the client reads the vfs error
	}

	cur := strings.TrimSuffix(p, rel)
	for elem := range strings.SplitSeq(rel, "/") {
		cur += elem
		if info, err := b.Stat(cur); err == nil && info.IsDir() {
			cur += "/"

			continue
		}

		if err := b.Mkdir(cur, perm); err != nil {
			return err
		}

		cur += "/"
	}

	return nil
}

// begin checks and charges one new entry at p: a folder at rel (MKD), or a
// file in the folder rel (STOR). The box is scanned first on its first use,
// again when it is due, and again when a limit for space or entries refuses
// and the last scan is old enough: files removed by hand count at once.
func (b *boxFs) begin(p, rel string, file bool) error {
	d := b.d

	if d.limits.MaxDepth > 0 && depth(rel) > d.limits.MaxDepth {
		return b.refuse(p, d.depthError(b.dir), true)
	}

	if b.box != nil {
		b.box.init.Do(func() { d.scan(b.box, true) })
	}

	rescanned := false

	d.mu.Lock()
	for {
		now := d.now()
		if bx := b.box; bx != nil && !rescanned && !bx.scanning && now.Sub(bx.scanned) >= rescanEvery {
			d.mu.Unlock()
			d.scan(bx, false)
			d.mu.Lock()

			rescanned = true

			continue
		}

		le := b.admitLocked(now, file)
		if le == nil {
			break
		}

		if bx := b.box; bx != nil && (le.reason == reasonFiles || le.reason == reasonQuota) &&
			!rescanned && !bx.scanning && now.Sub(bx.scanned) >= rescanAfter {
			d.mu.Unlock()
			d.scan(bx, false)
			d.mu.Lock()

			rescanned = true

			continue
		}

		d.mu.Unlock()

		return b.refuse(p, le, true)
	}
	d.mu.Unlock()

	b.refusals.Store(0)

	return nil
}

// admitLocked checks one new entry against every limit and takes it. d.mu is held.
func (b *boxFs) admitLocked(now time.Time, file bool) *limitError {
	d, l, bx := b.d, b.d.limits, b.box

	if bx != nil && l.MaxFiles > 0 && bx.entries >= l.MaxFiles {
		return d.filesError()
	}

	// A box full to the byte takes no new file; one being given back may.
	if bx != nil && file && l.Quota > 0 && bx.bytes-bx.releasing >= l.Quota {
		return d.quotaError()
	}

	var a *addrRate
	if l.FilesPerMinute > 0 || l.BytesPerHour > 0 {
		a = d.addrLocked(b.key, now)
	}

	if l.FilesPerMinute > 0 && a.files.tokens < 1 {
		return rateError(a.files.until(1, float64(l.FilesPerMinute), time.Minute))
	}

	if file && l.BytesPerHour > 0 && a.bytes.tokens < 1 {
		size := float64(l.BytesPerHour)

		return d.bytesError(a.bytes.until(size, size, time.Hour))
	}

	if l.FilesPerMinute > 0 {
		a.files.tokens--
	}

	if bx != nil {
		bx.entries++
		bx.inflightEntries++
		bx.changes++
	}

	return nil
}

// end settles the entry begin charged: made (ok) or not. A folder made is now
// on disk; a file made stays in flight until its Close.
func (b *boxFs) end(rel string, file, ok bool) {
	d := b.d

	d.mu.Lock()
	defer d.mu.Unlock()

	if !ok && d.limits.FilesPerMinute > 0 {
		d.giveBackLocked(b.key, 1, 0)
	}

	bx := b.box
	if bx == nil {
		return
	}

	bx.changes++

	switch {
	case !ok:
		bx.entries--
		bx.inflightEntries--
	case file:
		bx.names[rel]++
	default:
		bx.inflightEntries--
	}
}

// refuse counts and logs a refusal and returns it. The first refusal of
// each reason in a session is logged as a warning, later ones at debug
// level: a flood of refused commands does not flood the log. The
// maxRateRefusals-th rate refusal in a row of a command closes the session
// with 421.
func (b *boxFs) refuse(p string, le *limitError, command bool) error {
	b.d.refused.WithLabelValues(le.reason).Inc()

	log := b.si.logger()
	fields := []zap.Field{zap.String("reason", le.reason), zap.String("path", p)}

	bit := uint32(1) << reasonIndex(le.reason)
	if b.logged.Or(bit)&bit == 0 {
		log.Warn("upload refused", fields...)
	} else {
		log.Debug("upload refused", fields...)
	}

	if le.code == 450 && b.refusals.Add(1) >= maxRateRefusals && command {
		log.Warn("too many uploads refused for a rate, closing", zap.Int("refusals", maxRateRefusals))
		b.si.srv.closeSessionWith(b.si, "upload rate", "Too many uploads from your address: closing the connection.")
	}

	return le
}

func reasonIndex(reason string) int {
	for i, r := range refusalReasons {
		if r == reason {
			return i
		}
	}

	return len(refusalReasons)
}

// reserve charges n more bytes of f to the box and the address before they
// are written. At the quota, an upload waits while a cut one gives its bytes
// back (of two uploads racing for the last bytes, the one that crosses is cut
// and the other goes on), and the box is scanned again if that is due.
func (b *boxFs) reserve(f *boxFile, n int64) error {
	d, l, bx := b.d, b.d.limits, b.box
	rescanned := false

	d.mu.Lock()
	for {
		now := d.now()

		var le *limitError

		switch {
		case bx != nil && l.Quota > 0 && bx.bytes+n > l.Quota:
			if bx.releasing > 0 && bx.bytes-bx.releasing+n <= l.Quota {
				d.released.Wait()

				continue
			}

			le = d.quotaError()
		case l.BytesPerHour > 0:
			if a := d.addrLocked(b.key, now); a.bytes.tokens < float64(n) {
				// Try again when the hour's allowance is whole again, this
				// upload's bytes given back.
				size := float64(l.BytesPerHour)
				a.bytes.tokens += float64(f.bytes)
				wait := a.bytes.until(size, size, time.Hour)
				a.bytes.tokens -= float64(f.bytes)
				le = d.bytesError(wait)
			}
		}

		if le == nil {
			break
		}

		if le.reason == reasonQuota && !rescanned && !bx.scanning && now.Sub(bx.scanned) >= rescanAfter {
			d.mu.Unlock()
			d.scan(bx, false)
			d.mu.Lock()

			rescanned = true

			continue
		}

		// The refused upload is cut (boxFile.cut): its bytes are marked as
		// going back now, under the same lock, so that an upload racing it
		// for the last bytes waits for them rather than being refused too.
		if bx != nil {
			bx.releasing += f.bytes
		}
		d.mu.Unlock()

		return b.refuse(f.path, le, false)
	}

	b.growLocked(f, n)
	d.mu.Unlock()

	return nil
}

// growLocked charges n bytes of f, or gives them back when n < 0. d.mu is held.
func (b *boxFs) growLocked(f *boxFile, n int64) {
	f.bytes += n

	if bx := b.box; bx != nil {
		bx.bytes += n
		bx.inflightBytes += n
	}

	if b.d.limits.BytesPerHour > 0 {
		if n > 0 {
			b.d.addrLocked(b.key, b.d.now()).bytes.tokens -= float64(n)
		} else {
			b.d.giveBackLocked(b.key, 0, -n)
		}
	}
}

// boxFile is a file being uploaded into a drop box. Each Write is charged
// before it reaches the disk; one that would cross a limit is refused, which
// cuts the upload: its part is emptied at once (its bytes go back to the box)
// and removed on Close, so nothing lands under the final name. It implements
// no io.ReaderFrom: the transfer then copies through Write, where every byte
// is seen before it is written.
type boxFile struct {
	afero.File
	fs   *boxFs
	path string // virtual path
	rel  string // path below the box

	bytes int64 // charged so far (under dropBoxes.mu)

	mu     sync.Mutex
	failed bool // TransferError was called, or a write failed: an atomic upload is discarded
	cutOff bool // cut at a limit: the upload must not stay, even written in place
	closed bool
}

var (
	_ afero.File                  = (*boxFile)(nil)
	_ ftpserver.FileTransferError = (*boxFile)(nil)
	_ io.ReaderFrom               = (*splicingFile)(nil)
)

func (f *boxFile) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return f.File.Write(p) //nolint:wrapcheck // the vfs error, as the client reads it
	}

	if err := f.fs.reserve(f, int64(len(p))); err != nil {
		f.cut(err)

		return 0, err
	}

	n, err := f.File.Write(p)
	f.settle(int64(len(p)), int64(n), err)

	return n, err //nolint:wrapcheck // the vfs error, as the client reads it
}

func (f *boxFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.reserve(f, int64(len(p))); err != nil {
		f.cut(err)

		return 0, err
	}

	n, err := f.File.WriteAt(p, off)
	f.settle(int64(len(p)), int64(n), err)

	return n, err //nolint:wrapcheck // the vfs error, as the client reads it
}

func (f *boxFile) WriteString(s string) (int, error) {
	return f.Write([]byte(s))
}

// Truncate is refused: it could grow the file past what was charged.
func (f *boxFile) Truncate(int64) error {
	return &fs.PathError{Op: "truncate", Path: f.path, Err: fs.ErrPermission}
}

// settle gives back what a write charged but did not write.
func (f *boxFile) settle(charged, written int64, err error) {
	if written < charged {
		f.fs.d.mu.Lock()
		f.fs.growLocked(f, written-charged)
		f.fs.d.mu.Unlock()
	}

	if err != nil {
		f.mu.Lock()
		f.failed = true
		f.mu.Unlock()
	}
}

// cut ends an upload that reserve refused at a limit: the file underneath is told the
// transfer failed (an atomic upload then discards its part), and the part is
// emptied at once, so its bytes go back to the box before the transfer
// unwinds. A part that cannot be emptied keeps its bytes until Close.
func (f *boxFile) cut(err error) {
	f.mu.Lock()
	f.failed, f.cutOff = true, true
	f.mu.Unlock()

	if te, ok := f.File.(ftpserver.FileTransferError); ok {
		te.TransferError(err)
	}

	d, bx := f.fs.d, f.fs.box

	// reserve marked f's bytes as releasing when it refused the write.
	d.mu.Lock()
	held := f.bytes
	d.mu.Unlock()

	terr := f.File.Truncate(0)

	d.mu.Lock()
	if bx != nil {
		bx.releasing -= held
	}

	if terr == nil {
		f.fs.growLocked(f, -held)
	}

	d.released.Broadcast()
	d.mu.Unlock()
}

// TransferError records that the upload failed and tells the file underneath.
func (f *boxFile) TransferError(err error) {
	f.mu.Lock()
	f.failed = true
	if errors.Is(err, ErrTooLarge) && !f.cutOff {
		// max_upload_size: counted here, removed below if written in place.
		f.cutOff = true
		f.fs.d.refused.WithLabelValues(reasonSize).Inc()
	}
	f.mu.Unlock()

	if te, ok := f.File.(ftpserver.FileTransferError); ok {
		te.TransferError(err)
	}
}

// Close ends the upload and settles its account. An atomic upload lands if
// nothing failed and the file underneath committed it; one written in place
// stays where it is, whole or not, unless it was cut at a limit (then it is
// removed here). What did not land gives its entry and bytes back to the box
// and its bytes back to the address.
func (f *boxFile) Close() error {
	d, bx := f.fs.d, f.fs.box

	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()

		return nil
	}
	f.closed = true
	f.mu.Unlock()

	if bx != nil {
		d.mu.Lock()
		bx.changes++
		d.mu.Unlock()
	}

	err := f.File.Close()

	f.mu.Lock()
	failed, cutOff := f.failed, f.cutOff
	f.mu.Unlock()

	landed := !cutOff
	if f.fs.atomic {
		landed = !failed && err == nil
	} else if cutOff && f.fs.root != nil {
		// Through the root: the drop box refuses deletes by design.
		_ = f.fs.root.Remove(f.path)
	}

	d.mu.Lock()
	defer d.mu.Unlock()

	held := f.bytes
	if !landed {
		f.fs.growLocked(f, -held)
		held = 0
	}

	if bx != nil {
		bx.inflightBytes -= held
		bx.inflightEntries--
		if !landed {
			bx.entries--
		}

		if bx.names[f.rel]--; bx.names[f.rel] <= 0 {
			delete(bx.names, f.rel)
		}

		bx.changes++
	}

	return err //nolint:wrapcheck // the vfs error, as the client reads it
}

// splicingFile is a boxFile whose bytes no limit bounds (no upload_quota,
// no upload_bytes_per_hour): it keeps the splice(2) path of the file
// underneath and counts bytes once written.
type splicingFile struct{ *boxFile }

func (f *splicingFile) ReadFrom(r io.Reader) (int64, error) {
	var (
		n   int64
		err error
	)

	if rf, ok := f.File.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(f.File, r)
	}

	f.fs.d.mu.Lock()
	f.fs.growLocked(f.boxFile, n)
	f.fs.d.mu.Unlock()

	// A deadline of the data connection is the transfer's tick (transfer.go),
	// not a failure: the transfer reads on, or calls TransferError.
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		f.mu.Lock()
		f.failed = true
		f.mu.Unlock()
	}

	return n, err //nolint:wrapcheck // the vfs error, as the client reads it
}
