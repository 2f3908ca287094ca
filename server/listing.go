package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"
	"unsafe"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
	"go.uber.org/zap"

	"wharf/auth"
)

// listingWait is how long a listing waits for a free slot, or for memory
// under max_listing_memory, before it is refused with 450; clients wait
// longer than this for a reply.
const listingWait = 30 * time.Second

// listingSlots bounds the directory reads running at once. A listing is held
// in memory (about 400 bytes an entry: 40 MiB for 100,000), so the bound is on
// memory, the same on every machine, not on cores.
const listingSlots = 4

// readBatch is how many entries one Readdir call reads.
const readBatch = 1024

// maxPattern bounds a listing pattern's length.
const maxPattern = 255

// listChunk is how much of a listing is formatted ahead of the data connection.
const listChunk = 32 << 10

// listingPath is the name under which the engine carries a listing wharf
// formats itself: LIST, NLST and MLSD reach the engine as a RETR of it, so
// the engine's data connection (passive or active, clear or TLS) carries
// wharf's lines. The engine formats listings with Go's mode letters (a
// sticky folder is "dtrwxrwxrwx"), ignores OPTS MLST, and writes a line per
// system call. Only the control connection hands this name to the engine,
// with the listing it stands for (control.takeListing).
const listingPath = "/\x00wharf-listing"

var errListingsBusy = errors.New("too many listings in progress, try again")

var _ ftpserver.ClientDriverExtensionFileList = (*session)(nil)

// listRequest is one LIST, NLST, MLSD or STAT <path>.
type listRequest struct {
	verb      string  // LIST, NLST or MLSD
	arg       string  // the path as the client gave it, options removed
	path      string  // the absolute virtual path
	facts     factSet // MLSD's facts (OPTS MLST)
	all       bool    // -a: dotfiles too (LIST, NLST, STAT)
	recursive bool    // -R, where [listing] recursive allows it (LIST, STAT)
}

// list answers LIST, NLST and MLSD: wharf formats the listing, the engine
// carries it over the data connection.
func (c *control) list(verb, arg string) {
	if !c.dataGuard() {
		return
	}

	c.waitTransfer()

	req := &listRequest{verb: verb, arg: arg, facts: c.proto.facts}
	if verb != "MLSD" {
		req.arg, req.all, req.recursive = listArgs(arg)
		req.recursive = req.recursive && verb == "LIST" && c.srv.opts.Listing.Recursive
	}

	req.path = c.abs(req.arg)

	c.mu.Lock()
	c.proto.listing = req
	c.mu.Unlock()

	c.forward(&command{verb: "RETR", arg: listingPath, kind: cmdTransfer, listing: verb})
}

// takeListing returns the listing the engine is about to carry, once.
func (c *control) takeListing() *listRequest {
	c.mu.Lock()
	defer c.mu.Unlock()

	req := c.proto.listing
	c.proto.listing = nil

	return req
}

// listArgs takes ls options ("-la", "-a", "-lR") off a LIST, NLST or STAT
// argument, and reports -a (dotfiles too) and -R (recursive).
func listArgs(arg string) (rest string, all, recursive bool) {
	for strings.HasPrefix(arg, "-") {
		opt, after, _ := strings.Cut(arg, " ")
		if strings.Trim(opt[1:], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			break
		}

		all = all || strings.ContainsAny(opt, "aA")
		recursive = recursive || strings.Contains(opt, "R")
		arg = strings.TrimLeft(after, " ")
	}

	return arg, all, recursive
}

// mlst answers MLST (RFC 3659, 7): the facts of one file or folder, named as asked.
func (c *control) mlst(_, arg string) {
	c.waitTransfer()

	shown := arg
	if shown == "" {
		shown = c.si.cc.Path()
	}

	target := c.abs(arg)

	fi, err := c.si.drv().stat(target)
	if err != nil {
		c.answerErr(storageCode(err, 550), err)

		return
	}

	if link := c.si.drv().link(target); link != nil {
		fi = link // the object named is the link itself
	}

	c.answer(250, "Listing "+shown+"\n "+c.si.drv().facts(fi, c.proto.facts)+" "+shown+"\nEnd.")
}

// statPath answers STAT <path>: a LIST on the control connection (RFC 959,
// 4.1.3), 213 for a file and 212 for a folder.
func (c *control) statPath(arg string) {
	req := &listRequest{verb: "LIST"}
	req.arg, req.all, req.recursive = listArgs(arg)
	req.recursive = req.recursive && c.srv.opts.Listing.Recursive
	req.path = c.abs(req.arg)

	l, err := c.si.drv().openListing(req)
	if err != nil {
		c.answerErr(450, err)

		return
	}
	defer l.Close()

	code := "212"
	if l.single {
		code = "213"
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	c.hold()
	c.out = append(c.out, code+"-Status of "+req.path+":\r\n"...)

	for l.fill() {
		c.out = append(c.out, l.buf...)
		l.buf = l.buf[:0]
		if len(c.out) >= holdCap {
			c.flushListingLocked()
		}
	}

	c.out = append(c.out, code+" End of status.\r\n"...)
	c.flushMaybe(false)
}

// flushListingLocked sends a piece of a STAT listing: a client that takes
// none of it for data_timeout is given up, as a data connection would be.
func (c *control) flushListingLocked() {
	if timeout := c.srv.opts.DataTimeout; timeout > 0 && len(c.out) > 0 && c.werr == nil && !c.closed {
		_ = c.gc.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := c.tr.Write(c.out); err != nil {
			c.werr = err
			c.si.logger().Warn("status listing stalled, closing session", zap.Duration("data_timeout", timeout))
			go c.srv.closeSession(c.si, "status listing stalled")
		}

		c.out = c.out[:0]

		return
	}

	c.flushLocked()
}

// ReadDir is the engine's listing hook. wharf's own listings do not use it;
// it is kept so that any listing the engine makes is bounded the same way.
func (s *session) ReadDir(name string) ([]os.FileInfo, error) {
	list, err := s.loadDir(name)
	if err != nil {
		return nil, s.note(err)
	}
	defer s.srv.listMem.drop(list)

	return slices.Clone(list.entries), nil // the engine may sort it; the cache's copy is shared
}

// loadDir returns the listing of folder dir (an absolute virtual path),
// held (listingMemory.hold) until the caller drops it: from the listing
// cache, from another session's read of it in progress, or read (at most
// max_list_entries entries, a bounded number of folders read at once) and
// then cached. Every LIST, NLST, MLSD and STAT of a folder, with a pattern or
// not, shares it: a pattern is applied as the listing is sent.
func (s *session) loadDir(dir string) (*dirList, error) {
	// Opening the folder checks the session may list it, cache or not.
	f, err := s.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	return s.loadFolder(f, dir)
}

// loadFolder is loadDir of folder f, opened by the session as dir.
func (s *session) loadFolder(f afero.File, dir string) (*dirList, error) {
	key := s.dirKey(dir)
	var modTime time.Time
	if st, err := f.Stat(); err == nil {
		modTime = st.ModTime()
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.srv.listingWait)
	defer cancel()

	// A crowd asking for one folder at once reads it once: the first reads,
	// the others wait for its list.
	for {
		list, wait, done := s.srv.dirs.lookup(key, modTime)
		switch {
		case list != nil:
			return s.hold(ctx, dir, list)
		case done != nil:
			list, err := s.readDir(ctx, f, dir)
			done(list)

			return list, err
		}

		select {
		case <-wait.done:
		case <-ctx.Done():
			return nil, &fs.PathError{Op: "list", Path: dir, Err: errListingsBusy}
		}

		if wait.list != nil {
			return s.hold(ctx, dir, wait.list)
		}
		// That read failed: look again, and read if no one else does.
	}
}

// dirKey names the listing of folder dir (an absolute virtual path) in the
// listing cache: by the session's view of its home, or by the name the
// storage gives it (ListingKeyer), which every home and account reaching the
// folder share.
func (s *session) dirKey(dir string) dirKey {
	dir = path.Clean(path.Join("/", dir))
	if s.listings != nil {
		return dirKey{store: s.listings.ListingKey(dir)}
	}

	k := dirKey{
		home: s.account.Home, dir: dir,
		worldReadable: s.account.WorldReadableOnly, dropBox: s.account.Anonymous && s.account.UploadDir != "",
	}
	if s.pins != nil {
		k.pins = s.pins.Key() // sessions that keep other copies of a snapshot see other trees
	}

	return k
}

// hold makes the session a holder of list, the listing of dir.
func (s *session) hold(ctx context.Context, dir string, list *dirList) (*dirList, error) {
	if err := s.srv.listMem.hold(ctx, list); err != nil {
		return nil, &fs.PathError{Op: "list", Path: dir, Err: err}
	}

	return list, nil
}

// readDir reads folder f in one of the listing slots.
func (s *session) readDir(ctx context.Context, f afero.File, dir string) (*dirList, error) {
	select {
	case s.srv.listings <- struct{}{}:
		defer func() { <-s.srv.listings }()
	case <-ctx.Done():
		return nil, &fs.PathError{Op: "list", Path: dir, Err: errListingsBusy}
	}

	return s.readList(ctx, f, dir)
}

// readList reads folder f, paying for its memory batch by batch: it may wait
// for memory before the first batch, holding none yet, but not after, so
// that readers never wait for each other; a batch that does not fit then
// fails the read (450, try again).
func (s *session) readList(ctx context.Context, f afero.File, dir string) (*dirList, error) {
	list := &dirList{refs: 1}
	limit := s.srv.opts.MaxListEntries
	truncated := false

	for {
		batch, err := f.Readdir(readBatch)
		if limit > 0 && len(list.entries)+len(batch) > limit {
			batch, truncated = batch[:limit-len(list.entries)], true
		}

		var n int64
		for _, fi := range batch {
			n += entryBytes + int64(len(fi.Name()))
		}

		var merr error
		if list.bytes == 0 {
			merr = s.srv.listMem.acquire(ctx, n)
		} else {
			merr = s.srv.listMem.grow(list.bytes, n)
		}

		if merr != nil {
			s.srv.listMem.release(list.bytes)

			return nil, &fs.PathError{Op: "list", Path: dir, Err: merr}
		}

		list.bytes += n
		list.entries = append(list.entries, batch...)

		if truncated || errors.Is(err, io.EOF) || len(batch) == 0 {
			break
		}

		if err != nil {
			s.srv.listMem.release(list.bytes)

			return nil, err
		}
	}

	if truncated {
		s.logger().Warn("listing truncated", zap.String("path", dir), zap.Int("max_list_entries", limit))
	}

	slices.SortFunc(list.entries, func(a, b os.FileInfo) int { return cmp.Compare(a.Name(), b.Name()) })

	return list, nil
}

// openListing prepares what req lists, before the data connection opens, so
// that a refusal (no such folder, no memory left) is the reply instead of 150:
// a folder's entries (LIST and NLST with a pattern, "mget *.iso", keep those
// that match as they are sent), or one file.
func (s *session) openListing(req *listRequest) (*listing, error) {
	l := &listing{sess: s, req: req, dataTimeout: s.srv.opts.DataTimeout, now: time.Now()}

	if !isPattern(path.Base(req.path)) {
		switch ok, err := s.openFolderListing(l); {
		case err != nil:
			return nil, err
		case ok:
			return l, nil
		}
	}

	dir := req.path
	st, err := s.Fs.Stat(req.path)
	switch {
	case err != nil:
		d, base := path.Split(req.path)
		if req.verb == "MLSD" || !isPattern(base) || isPattern(d) || len(base) > maxPattern {
			return nil, err
		}

		if dst, derr := s.Fs.Stat(d); derr != nil || !dst.IsDir() {
			return nil, err
		}

		dir, l.pattern = d, base
	case !st.IsDir() && req.verb == "MLSD":
		return nil, &fs.PathError{Op: "list", Path: req.path, Err: errMLSDFile}
	case !st.IsDir():
		l.single, l.entries = true, []os.FileInfo{st}
	}

	if !l.single {
		if l.held, err = s.loadDir(dir); err != nil {
			return nil, err
		}

		l.entries = l.held.entries
	}

	s.formatAs(l)

	return l, nil
}

// openFolderListing prepares l when its path opens: a folder's entries, or
// one file. It reports false when the path does not open, for openListing
// to look at it again, as a pattern or for its error. Opening first looks at
// a folder once, where a Stat and then an Open looked twice: on an object
// store each look costs requests.
func (s *session) openFolderListing(l *listing) (bool, error) {
	f, err := s.Open(l.req.path)
	if err != nil {
		return false, nil // openListing looks again, and answers its own error
	}
	defer f.Close()

	st, err := f.Stat()
	switch {
	case err != nil:
		return false, nil
	case !st.IsDir() && l.req.verb == "MLSD":
		return true, &fs.PathError{Op: "list", Path: l.req.path, Err: errMLSDFile}
	case !st.IsDir():
		l.single, l.entries = true, []os.FileInfo{st}
	default:
		if l.held, err = s.loadFolder(f, l.req.path); err != nil {
			return true, err
		}

		l.entries, l.folder = l.held.entries, st
	}

	s.formatAs(l)

	return true, nil
}

// startListing opens the listing the engine is about to send, under the
// watchdog's eye from now on, as a transfer is.
func (s *session) startListing(req *listRequest) (*listing, error) {
	l, err := s.openListing(req)
	if err != nil {
		return nil, err
	}

	l.moved()
	s.info.listing.Store(l)

	return l, nil
}

// formatAs sets how l's lines look for its command.
func (s *session) formatAs(l *listing) {
	req, single := l.req, l.single

	switch req.verb {
	case "NLST":
		l.line = nlstLine(req.arg, l.pattern != "", single)
	case "MLSD":
		l.line = func(b []byte, fi os.FileInfo) []byte {
			return append(append(s.appendFacts(b, fi, req.facts), ' '), fi.Name()...)
		}
		l.titles = s.mlsdTitles(req, l.folder)
	default:
		l.line = func(b []byte, fi os.FileInfo) []byte { return appendLsLine(b, fi, l.now) }
	}

	if req.recursive && !single {
		l.dir, l.subdirs = req.path, s.subdirs(req.path, l.entries)
		l.header = true
	}
}

// lineFunc appends an entry's line in a listing, without its CRLF.
type lineFunc func([]byte, os.FileInfo) []byte

// nlstLine returns how NLST arg names an entry: as the client named the
// folder, joined with the entry's name ("pub/a.iso" for NLST pub), or its
// pattern's folder ("NLST pub/*.iso"), or arg itself for a file.
func nlstLine(arg string, pattern, single bool) lineFunc {
	prefix := arg
	if pattern {
		prefix = path.Dir(arg)
	}

	// path.Join(prefix, name) for a name without "/", made once.
	switch prefix = path.Clean(prefix); prefix {
	case ".":
		prefix = ""
	case "/":
	default:
		prefix += "/"
	}

	return func(b []byte, fi os.FileInfo) []byte {
		if single {
			return append(b, arg...)
		}

		return append(append(b, prefix...), fi.Name()...)
	}
}

// mlsdTitles are the entries RFC 3659 (7.5.1) names for the listed folder
// itself (type=cdir, ".") and its parent (type=pdir, ".."), as ProFTPD and
// pure-ftpd send them: clients take them for the listing's title.
func (s *session) mlsdTitles(req *listRequest, folder os.FileInfo) []os.FileInfo {
	if folder == nil {
		folder, _ = s.Fs.Stat(req.path)
	}

	var out []os.FileInfo
	if folder != nil {
		out = append(out, title{FileInfo: folder, name: ".", kind: "cdir"})
	}

	if req.path != "/" {
		if st, err := s.Fs.Stat(path.Dir(req.path)); err == nil {
			out = append(out, title{FileInfo: st, name: "..", kind: "pdir"})
		}
	}

	return out
}

// title is a folder as an MLSD title entry.
type title struct {
	os.FileInfo
	name, kind string
}

func (t title) Name() string { return t.name }

// shown reports whether an entry goes into req's listing: names with a line
// break never, hidden names ([listing] hide) never, dotfiles in LIST, NLST
// and STAT only with -a (as ls and vsftpd do; MLSD, for machines, lists them).
func (s *session) shown(fi os.FileInfo, req *listRequest) bool {
	name := fi.Name()
	if strings.ContainsAny(name, "\r\n") {
		return false
	}

	if _, ok := fi.(title); ok {
		return true
	}

	if strings.HasPrefix(name, ".") && !req.all && req.verb != "MLSD" {
		return false
	}

	for _, pattern := range s.srv.opts.Listing.Hide {
		if ok, _ := path.Match(pattern, name); ok {
			return false
		}
	}

	return true
}

// subdirs are the folders below dir to list recursively (LIST -R), in order:
// never through a link, and never one listed already (a folder reached twice
// by its device and inode), so a link loop ends.
func (s *session) subdirs(dir string, entries []os.FileInfo) []string {
	var out []string
	for _, fi := range entries {
		if fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
			if _, isLink := fi.(linkInfo); !isLink {
				out = append(out, path.Join(dir, fi.Name()))
			}
		}
	}

	return out
}

// link returns name as its folder's listing shows it, when that is a link
// (Stat follows links; the listing, through the cache, knows them). Only
// the disk has links: on an object store, reading the folder (a walk of its
// prefix, for one MLST) would find none.
func (s *session) link(name string) os.FileInfo {
	if name == "/" || s.srv.opts.Listing.Symlinks != SymlinksAsLinks || s.srv.opts.Storage != nil {
		return nil
	}

	list, err := s.loadDir(path.Dir(name))
	if err != nil {
		return nil
	}
	defer s.srv.listMem.drop(list)

	for _, fi := range list.entries {
		if _, ok := fi.(linkInfo); ok && fi.Name() == path.Base(name) {
			return fi
		}
	}

	return nil
}

// linkInfo is a symbolic link listed as a link: vfs gives its target as the
// client sees it (never a disk path).
type linkInfo interface {
	LinkTarget() string
}

// listing is a formatted listing, read by the engine like a file: lines are
// made as the data connection takes them. A recursive listing (LIST -R)
// reads its folders one after another, as ls -lR prints them.
type listing struct {
	sess        *session
	req         *listRequest
	held        *dirList      // the folder listing this one holds, if any (listingMemory)
	entries     []os.FileInfo // what is being listed: held's entries, or the one file
	titles      []os.FileInfo // MLSD's cdir and pdir entries, sent first
	pattern     string        // only the names that match (LIST and NLST "*.iso")
	single      bool          // one file, not a folder
	folder      os.FileInfo   // the folder listed, when it was opened (openFolderListing)
	line        lineFunc
	next        int
	buf         []byte
	dataTimeout time.Duration
	now         time.Time

	progress  atomic.Int64 // unix nanoseconds of the last bytes taken, for the watchdog
	deadlined atomic.Bool  // sent by WriteTo, under the data connection's own deadline
	stalled   atomic.Bool  // the session was closed for it
	closed    atomic.Bool

	dir     string   // the folder being listed, for LIST -R
	subdirs []string // the folders still to list, for LIST -R
	header  bool     // the next lines start with dir's "name:" header
	listed  int      // entries listed so far, against max_list_entries
	seen    map[string]bool
}

var (
	_ ftpserver.FileTransfer      = (*listing)(nil)
	_ ftpserver.FileTransferError = (*listing)(nil)
	_ io.WriterTo                 = (*listing)(nil)
)

// TransferError records why the listing did not get through, for the reply.
func (l *listing) TransferError(err error) {
	_ = l.sess.note(netErr(err))
}

// fill formats the next lines into buf; it reports false at the end.
func (l *listing) fill() bool {
	for len(l.buf) < listChunk {
		if l.header {
			if l.dir != l.req.path {
				l.buf = append(l.buf, "\r\n"...)
			}

			l.buf = append(l.buf, l.dir+":\r\n"...)
			l.header = false
		}

		if len(l.titles) > 0 {
			l.buf = append(l.line(l.buf, l.titles[0]), "\r\n"...)
			l.titles = l.titles[1:]

			continue
		}

		if l.next < len(l.entries) {
			fi := l.entries[l.next]
			l.next++
			l.listed++

			if (l.pattern == "" || match(l.pattern, fi.Name())) && l.sess.shown(fi, l.req) {
				l.buf = append(l.line(l.buf, fi), "\r\n"...)
			}

			continue
		}

		if !l.descend() {
			break
		}
	}

	return len(l.buf) > 0
}

// descend moves a recursive listing to its next folder; it reports false
// when none is left, or max_list_entries entries were listed.
func (l *listing) descend() bool {
	limit := l.sess.srv.opts.MaxListEntries
	for len(l.subdirs) > 0 && (limit <= 0 || l.listed < limit) {
		dir := l.subdirs[0]
		l.subdirs = l.subdirs[1:]

		if !l.first(dir) {
			continue
		}

		list, err := l.sess.loadDir(dir)
		if err != nil {
			continue
		}

		l.sess.srv.listMem.drop(l.held)
		l.held = list
		l.dir, l.entries, l.next, l.header = dir, list.entries, 0, true
		// Depth first, as ls -lR: this folder's subfolders come next.
		l.subdirs = append(l.sess.subdirs(dir, list.entries), l.subdirs...)

		return true
	}

	return false
}

// first reports whether folder dir is listed for the first time (by device
// and inode, where the file system gives them).
func (l *listing) first(dir string) bool {
	st, err := l.sess.Fs.Stat(dir)
	if err != nil {
		return false
	}

	id, ok := fileID(st)
	if !ok {
		return true
	}

	if l.seen == nil {
		l.seen = map[string]bool{}
		if top, err := l.sess.Fs.Stat(l.req.path); err == nil {
			if topID, ok := fileID(top); ok {
				l.seen[topID] = true
			}
		}
	}

	if l.seen[id] {
		return false
	}

	l.seen[id] = true

	return true
}

// fileID is a file's device and inode, where the file system has them.
func fileID(fi os.FileInfo) (string, bool) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%x:%x", st.Dev, st.Ino), true
	}

	return "", false
}

// Read serves the engine's own copy loop (ASCII mode), where no deadline
// reaches the data connection: the watchdog cuts a stall (cutStalled).
func (l *listing) Read(p []byte) (int, error) {
	l.moved()

	if len(l.buf) == 0 && !l.fill() {
		return 0, io.EOF
	}

	n := copy(p, l.buf)
	l.buf = l.buf[n:]

	return n, nil
}

// moved records progress: the data connection took what was given before.
func (l *listing) moved() { l.progress.Store(time.Now().UnixNano()) }

// WriteTo sends the listing, cutting a data connection that takes nothing
// for data_timeout.
func (l *listing) WriteTo(w io.Writer) (int64, error) {
	if err := handshake(w); err != nil {
		l.sess.srv.metrics.handshakeFailed(tlsData, err)

		return 0, netErr(err)
	}

	defer clearDeadline(w)

	var total int64
	for len(l.buf) > 0 || l.fill() {
		if d, ok := w.(writeDeadliner); ok && l.dataTimeout > 0 {
			_ = d.SetWriteDeadline(time.Now().Add(l.dataTimeout))
			l.deadlined.Store(true)
		}

		n, err := w.Write(l.buf)
		total += int64(n)
		l.buf = l.buf[n:]
		l.moved()

		if err != nil {
			return total, netErr(err)
		}
	}

	return total, nil
}

func (l *listing) Write([]byte) (int, error) { return 0, errListingResume }

// Seek is only for REST, which a listing does not take.
func (l *listing) Seek(offset int64, whence int) (int64, error) {
	if offset == 0 && whence == io.SeekStart {
		return 0, nil
	}

	return 0, l.sess.note(errListingResume)
}

// Close gives back what the listing holds, at once: its part of
// max_listing_memory, and its place in the watchdog's eye.
func (l *listing) Close() error {
	if l.closed.Swap(true) {
		return nil
	}

	l.sess.srv.listMem.drop(l.held)
	l.sess.info.listing.CompareAndSwap(l, nil)
	l.held, l.entries, l.titles, l.buf = nil, nil, nil, nil

	return nil
}

var errListingResume = errors.New("a listing cannot be resumed")

// appendLsLine appends one entry as "ls -l" formats it, which is what
// clients parse from LIST: ls's mode letters, and the year instead of the
// time for dates more than six months old or in the future. A listing makes
// one line per entry per client, so it appends without a fmt call or an
// allocation.
func appendLsLine(b []byte, fi os.FileInfo, now time.Time) []byte {
	mtime := fi.ModTime()
	layout := "Jan _2 15:04"
	if mtime.After(now.Add(time.Hour)) || now.Sub(mtime) > 182*24*time.Hour {
		layout = "Jan _2  2006"
	}

	b = appendLsMode(b, fi.Mode())
	b = append(b, " 1 ftp ftp "...)
	b = appendRight(b, fi.Size(), 12)
	b = append(b, ' ')
	b = mtime.AppendFormat(b, layout)
	b = append(b, ' ')
	b = append(b, fi.Name()...)

	if link, ok := fi.(linkInfo); ok {
		b = append(append(b, " -> "...), link.LinkTarget()...)
	}

	return b
}

// appendRight appends n in decimal, right-aligned in width columns (%12d).
func appendRight(b []byte, n int64, width int) []byte {
	var digits [20]byte

	d := strconv.AppendInt(digits[:0], n, 10)
	for range width - len(d) {
		b = append(b, ' ')
	}

	return append(b, d...)
}

// lsMode is a mode as "ls -l" prints it: "drwxr-sr-t".
func lsMode(m fs.FileMode) string {
	return string(appendLsMode(nil, m))
}

// appendLsMode appends lsMode(m).
func appendLsMode(out []byte, m fs.FileMode) []byte {
	b := [10]byte{'-', '-', '-', '-', '-', '-', '-', '-', '-', '-'}

	switch {
	case m.IsDir():
		b[0] = 'd'
	case m&fs.ModeSymlink != 0:
		b[0] = 'l'
	case m&fs.ModeNamedPipe != 0:
		b[0] = 'p'
	case m&fs.ModeSocket != 0:
		b[0] = 's'
	case m&fs.ModeCharDevice != 0:
		b[0] = 'c'
	case m&fs.ModeDevice != 0:
		b[0] = 'b'
	}

	const rwx = "rwxrwxrwx"
	for i := range len(rwx) {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}

	special := func(bit fs.FileMode, at int, set, unset byte) {
		if m&bit == 0 {
			return
		}

		if b[at] == 'x' {
			b[at] = set
		} else {
			b[at] = unset
		}
	}
	special(fs.ModeSetuid, 3, 's', 'S')
	special(fs.ModeSetgid, 6, 's', 'S')
	special(fs.ModeSticky, 9, 't', 'T')

	return append(out, b[:]...)
}

// factSet is a set of MLST facts (RFC 3659, 7.5).
type factSet uint8

const (
	factType factSet = 1 << iota
	factSize
	factModify
	factPerm
	factUnique
	factUnixMode
)

// defaultFacts are the facts sent until OPTS MLST chooses others.
const defaultFacts = factType | factSize | factModify | factPerm | factUnique

// factNames are the facts wharf can give, in the order FEAT and MLSD show them.
var factNames = []struct {
	name string
	fact factSet
}{
	{"type", factType}, {"size", factSize}, {"modify", factModify}, {"perm", factPerm},
	{"unique", factUnique}, {"UNIX.mode", factUnixMode},
}

// parseFacts reads OPTS MLST's "type;size;": unknown facts are left out (RFC 3659, 7.9).
func parseFacts(list string) factSet {
	var set factSet
	for name := range strings.SplitSeq(list, ";") {
		for _, f := range factNames {
			if strings.EqualFold(strings.TrimSpace(name), f.name) {
				set |= f.fact
			}
		}
	}

	return set
}

// feat is FEAT's fact list: every fact, those sent now marked with "*".
func (set factSet) feat() string {
	var b strings.Builder
	for _, f := range factNames {
		b.WriteString(f.name)
		if set&f.fact != 0 {
			b.WriteByte('*')
		}
		b.WriteByte(';')
	}

	return b.String()
}

// opts is OPTS MLST's answer: the facts that will be sent.
func (set factSet) opts() string {
	var b strings.Builder
	for _, f := range factNames {
		if set&f.fact != 0 {
			b.WriteString(f.name + ";")
		}
	}

	return b.String()
}

// facts formats an entry's MLSD or MLST facts ("Type=file;Size=12;...;").
func (s *session) facts(fi os.FileInfo, set factSet) string {
	return string(s.appendFacts(nil, fi, set))
}

// appendFacts appends facts(fi, set), without a fmt call: MLSD makes it for
// every entry.
func (s *session) appendFacts(b []byte, fi os.FileInfo, set factSet) []byte {
	if set&factType != 0 {
		b = append(append(append(b, "Type="...), typeFact(fi)...), ';')
	}

	if set&factSize != 0 {
		b = append(strconv.AppendInt(append(b, "Size="...), fi.Size(), 10), ';')
	}

	if mtime := fi.ModTime(); set&factModify != 0 && !mtime.IsZero() {
		b = append(mtime.UTC().AppendFormat(append(b, "Modify="...), "20060102150405"), ';')
	}

	if set&factPerm != 0 {
		b = append(append(append(b, "Perm="...), perm(s.account.Access, s.account.Overwrite, fi.IsDir())...), ';')
	}

	if st, ok := fi.Sys().(*syscall.Stat_t); ok && set&factUnique != 0 {
		b = fmt.Appendf(b, "Unique=%xg%x;", st.Dev, st.Ino) // their types differ between systems
	}

	if set&factUnixMode != 0 {
		b = append(strconv.AppendUint(append(b, "UNIX.mode=0"...), uint64(unixMode(fi.Mode())), 8), ';')
	}

	return b
}

// typeFact is an entry's type fact (RFC 3659, 7.5.1): file, dir, cdir and
// pdir for an MLSD's titles, OS.unix=slink:<target> for a link (as pure-ftpd
// and ProFTPD write it).
func typeFact(fi os.FileInfo) string {
	switch t := fi.(type) {
	case title:
		return t.kind
	case linkInfo:
		return "OS.unix=slink:" + t.LinkTarget()
	}

	if fi.IsDir() {
		return "dir"
	}

	return "file"
}

// perm is the MLSx "perm" fact (RFC 3659, 7.5.5) for what the account may do.
func perm(access auth.Access, overwrite, dir bool) string {
	switch {
	case access == auth.ReadWrite && dir:
		return "cdeflmp"
	case access == auth.ReadWrite:
		return "adfrw"
	case access == auth.WriteOnly && dir:
		return "cem"
	case access == auth.WriteOnly && overwrite:
		return "aw"
	case access == auth.WriteOnly:
		return "" // create-only: nothing may be done to a file that exists
	case dir:
		return "el"
	default:
		return "r"
	}
}

// unixMode is a mode's permission bits as chmod writes them.
func unixMode(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}

	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}

	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}

	return bits
}

func isPattern(s string) bool {
	return strings.ContainsAny(s, "*?")
}

// match reports whether name matches pattern, where * is any run of
// characters and ? any one character (one rune, as path.Match has it: a
// name in UTF-8 is matched rune by rune when the pattern has a ?).
// Segments between stars are matched greedily left to right, which is exact
// for this grammar and never backtracks, so even a pattern of many stars
// costs at most len(name) × len(pattern).
func match(pattern, name string) bool {
	if strings.IndexByte(pattern, '?') >= 0 && !ascii(name) {
		return matchSeq(runesOf(pattern), runesOf(name))
	}

	return matchSeq(bytesOf(pattern), bytesOf(name))
}

// runesOf is s's runes, each byte that is not UTF-8 an element of its own
// that equals only the same byte (as path.Match compares them), never a
// rune, ? or *.
func runesOf(s string) []rune {
	out := make([]rune, 0, len(s))

	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			r = -1 - rune(s[i])
		}

		out = append(out, r)
		i += n
	}

	return out
}

// bytesOf is s's bytes, not copied: only read.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func ascii(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}

	return true
}

// matchSeq is match on bytes, or on runes.
func matchSeq[E byte | rune](pattern, name []E) bool {
	star := slices.Index(pattern, '*')
	if star < 0 {
		return len(name) == len(pattern) && matchHere(pattern, name)
	}

	lastStar := star + 1 + max(-1, lastIndex(pattern[star+1:], '*'))
	first, last := pattern[:star], pattern[lastStar+1:]
	if len(name) < len(first)+len(last) || !matchHere(first, name) || !matchHere(last, name[len(name)-len(last):]) {
		return false
	}

	rest := name[len(first) : len(name)-len(last)]
	middle := pattern[star+1 : max(star+1, lastStar)]

	for len(middle) > 0 {
		end := slices.Index(middle, '*')
		if end < 0 {
			end = len(middle)
		}

		if seg := middle[:end]; len(seg) > 0 {
			i := find(seg, rest)
			if i < 0 {
				return false
			}

			rest = rest[i+len(seg):]
		}

		middle = middle[min(end+1, len(middle)):]
	}

	return true
}

// lastIndex is the index of the last c in s, or -1.
func lastIndex[E byte | rune](s []E, c E) int {
	for i, e := range slices.Backward(s) {
		if e == c {
			return i
		}
	}

	return -1
}

// matchHere reports whether s starts with seg, where ? matches any element.
func matchHere[E byte | rune](seg, s []E) bool {
	if len(s) < len(seg) {
		return false
	}

	for i, c := range seg {
		if c != '?' && c != s[i] {
			return false
		}
	}

	return true
}

// find returns the first index where seg matches in s, or -1.
func find[E byte | rune](seg, s []E) int {
	for i := 0; i+len(seg) <= len(s); i++ {
		if matchHere(seg, s[i:]) {
			return i
		}
	}

	return -1
}
