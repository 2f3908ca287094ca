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
	"syscall"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"go.uber.org/zap"

	"wharf/auth"
)

// listingWait is how long a listing waits for a free slot before giving up;
// clients wait longer than this for a reply.
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
		c.answer(550, describe(err))

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

	entries, single, err := c.si.drv().listEntries(req)
	if err != nil {
		c.answer(450, describe(err))

		return
	}

	code := "212"
	if single {
		code = "213"
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	c.hold()
	c.out = append(c.out, code+"-Status of "+req.path+":\r\n"...)

	l := c.si.drv().newListing(req, entries, single)
	for l.fill() {
		c.out = append(c.out, l.buf...)
		l.buf = l.buf[:0]
		if len(c.out) >= holdCap {
			c.flushLocked()
		}
	}

	c.out = append(c.out, code+" End of status.\r\n"...)
	c.flushMaybe(false)
}

// ReadDir is the engine's listing hook. wharf's own listings do not use it;
// it is kept so that any listing the engine makes is bounded the same way.
func (s *session) ReadDir(name string) ([]os.FileInfo, error) {
	list, err := s.readDir(name, "", false)

	return list, s.note(err)
}

// listEntries reads what req lists: a folder's entries, the entries matching
// a pattern (LIST and NLST: "mget *.iso"), or one file. single reports the one file.
func (s *session) listEntries(req *listRequest) (entries []os.FileInfo, single bool, err error) {
	st, err := s.Fs.Stat(req.path)
	if err != nil {
		dir, base := path.Split(req.path)
		if req.verb != "MLSD" && isPattern(base) && !isPattern(dir) && len(base) <= maxPattern {
			if st, derr := s.Fs.Stat(dir); derr == nil && st.IsDir() {
				entries, err = s.readDir(dir, base, req.verb == "NLST")

				return entries, false, err
			}
		}

		return nil, false, err
	}

	if !st.IsDir() {
		if req.verb == "MLSD" {
			return nil, false, &fs.PathError{Op: "list", Path: req.path, Err: errMLSDFile}
		}

		return []os.FileInfo{st}, true, nil
	}

	entries, err = s.readDir(req.path, "", req.verb == "NLST")

	return entries, false, err
}

// readDir lists folder dir: at most max_list_entries entries read, a bounded
// number of listings at once, through the listing cache. With pattern, only
// the names matching it (one level of * and ?); with namesOnly, names alone,
// with no stat per entry (NLST).
func (s *session) readDir(dir, pattern string, namesOnly bool) ([]os.FileInfo, error) {
	// Opening the folder checks the session may list it, cache or not.
	f, err := s.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	key := dirKey{
		home: s.account.Home, dir: path.Clean(path.Join("/", dir)),
		worldReadable: s.account.WorldReadableOnly, dropBox: s.account.Anonymous && s.account.UploadDir != "",
	}
	var modTime time.Time
	if st, err := f.Stat(); err == nil {
		modTime = st.ModTime()
	}

	if list, ok := s.srv.dirs.get(key, modTime); ok {
		return filterList(list, pattern), nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), listingWait)
	defer cancel()

	select {
	case s.srv.listings <- struct{}{}:
		defer func() { <-s.srv.listings }()
	case <-ctx.Done():
		return nil, &fs.PathError{Op: "list", Path: dir, Err: errListingsBusy}
	}

	limit := s.srv.opts.MaxListEntries
	var out []os.FileInfo
	read := 0 // entries read, matching or not: a pattern bounds the work too

	for limit <= 0 || (len(out) < limit && read < limit) {
		var batch []os.FileInfo
		var err error

		if namesOnly {
			var names []string
			names, err = f.Readdirnames(readBatch)
			for _, n := range names {
				batch = append(batch, nameOnly(n))
			}
		} else {
			batch, err = f.Readdir(readBatch)
		}

		read += len(batch)

		for _, fi := range batch {
			if pattern == "" || match(pattern, fi.Name()) {
				out = append(out, fi)
			}
		}

		if errors.Is(err, io.EOF) || len(batch) == 0 {
			break
		}

		if err != nil {
			return nil, err
		}
	}

	if limit > 0 && (len(out) >= limit || read >= limit) {
		out = out[:min(len(out), limit)]
		s.logger().Warn("listing truncated", zap.String("path", dir), zap.Int("max_list_entries", limit))
	}

	slices.SortFunc(out, func(a, b os.FileInfo) int { return cmp.Compare(a.Name(), b.Name()) })

	if pattern == "" && !namesOnly {
		s.srv.dirs.put(key, modTime, out)
	}

	return out, nil
}

// openListing is the file the engine sends for a listing.
func (s *session) openListing(req *listRequest) (ftpserver.FileTransfer, error) {
	entries, single, err := s.listEntries(req)
	if err != nil {
		return nil, err
	}

	return s.newListing(req, entries, single), nil
}

// newListing formats req's entries as its command wants them.
func (s *session) newListing(req *listRequest, entries []os.FileInfo, single bool) *listing {
	l := &listing{sess: s, req: req, entries: entries, dataTimeout: s.srv.opts.DataTimeout, now: time.Now()}

	switch req.verb {
	case "NLST":
		prefix := req.arg
		if pattern := path.Base(req.arg); isPattern(pattern) && !single {
			prefix = path.Dir(req.arg)
		}

		l.line = func(fi os.FileInfo) string {
			if single {
				return req.arg
			}

			if prefix == "" || prefix == "." {
				return fi.Name()
			}

			return path.Join(prefix, fi.Name())
		}
	case "MLSD":
		l.line = func(fi os.FileInfo) string { return s.facts(fi, req.facts) + " " + fi.Name() }
		l.entries = append(s.mlsdTitles(req), entries...)
	default:
		l.line = func(fi os.FileInfo) string { return lsLine(fi, l.now) }
	}

	if req.recursive && !single {
		l.dir, l.subdirs = req.path, s.subdirs(req.path, entries)
		l.header = true
	}

	return l
}

// mlsdTitles are the entries RFC 3659 (7.5.1) names for the listed folder
// itself (type=cdir, ".") and its parent (type=pdir, ".."), as ProFTPD and
// pure-ftpd send them: clients take them for the listing's title.
func (s *session) mlsdTitles(req *listRequest) []os.FileInfo {
	var out []os.FileInfo
	if st, err := s.Fs.Stat(req.path); err == nil {
		out = append(out, title{FileInfo: st, name: ".", kind: "cdir"})
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
// (Stat follows links; the listing, through the cache, knows them).
func (s *session) link(name string) os.FileInfo {
	if name == "/" || s.srv.opts.Listing.Symlinks != SymlinksAsLinks {
		return nil
	}

	entries, err := s.readDir(path.Dir(name), "", false)
	if err != nil {
		return nil
	}

	for _, fi := range entries {
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
	entries     []os.FileInfo
	line        func(os.FileInfo) string
	next        int
	buf         []byte
	dataTimeout time.Duration
	now         time.Time

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

		if l.next < len(l.entries) {
			fi := l.entries[l.next]
			l.next++
			l.listed++

			if l.sess.shown(fi, l.req) {
				l.buf = append(l.buf, l.line(fi)+"\r\n"...)
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

		entries, err := l.sess.readDir(dir, "", false)
		if err != nil {
			continue
		}

		l.dir, l.entries, l.next, l.header = dir, entries, 0, true
		// Depth first, as ls -lR: this folder's subfolders come next.
		l.subdirs = append(l.sess.subdirs(dir, entries), l.subdirs...)

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

func (l *listing) Read(p []byte) (int, error) {
	if len(l.buf) == 0 && !l.fill() {
		return 0, io.EOF
	}

	n := copy(p, l.buf)
	l.buf = l.buf[n:]

	return n, nil
}

// WriteTo sends the listing, cutting a data connection that takes nothing
// for data_timeout.
func (l *listing) WriteTo(w io.Writer) (int64, error) {
	defer clearDeadline(w)

	var total int64
	for len(l.buf) > 0 || l.fill() {
		if d, ok := w.(writeDeadliner); ok && l.dataTimeout > 0 {
			_ = d.SetWriteDeadline(time.Now().Add(l.dataTimeout))
		}

		n, err := w.Write(l.buf)
		total += int64(n)
		l.buf = l.buf[n:]

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

func (l *listing) Close() error {
	l.entries, l.buf = nil, nil

	return nil
}

var errListingResume = errors.New("a listing cannot be resumed")

// lsLine formats one entry as "ls -l" does, which is what clients parse
// from LIST: ls's mode letters, and the year instead of the time for dates
// more than six months old or in the future.
func lsLine(fi os.FileInfo, now time.Time) string {
	date := "Jan _2 15:04"
	if t := fi.ModTime(); t.After(now.Add(time.Hour)) || now.Sub(t) > 182*24*time.Hour {
		date = "Jan _2  2006"
	}

	name := fi.Name()
	if link, ok := fi.(linkInfo); ok {
		name += " -> " + link.LinkTarget()
	}

	return fmt.Sprintf("%s 1 ftp ftp %12d %s %s", lsMode(fi.Mode()), fi.Size(), fi.ModTime().Format(date), name)
}

// lsMode is a mode as "ls -l" prints it: "drwxr-sr-t".
func lsMode(m fs.FileMode) string {
	b := []byte("----------")

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

	return string(b)
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
	var b strings.Builder

	if set&factType != 0 {
		b.WriteString("Type=" + typeFact(fi) + ";")
	}

	if set&factSize != 0 {
		b.WriteString("Size=" + strconv.FormatInt(fi.Size(), 10) + ";")
	}

	if set&factModify != 0 && !fi.ModTime().IsZero() {
		b.WriteString("Modify=" + fi.ModTime().UTC().Format("20060102150405") + ";")
	}

	if set&factPerm != 0 {
		b.WriteString("Perm=" + perm(s.account.Access, s.account.Overwrite, fi.IsDir()) + ";")
	}

	if st, ok := fi.Sys().(*syscall.Stat_t); ok && set&factUnique != 0 {
		fmt.Fprintf(&b, "Unique=%xg%x;", st.Dev, st.Ino)
	}

	if set&factUnixMode != 0 {
		fmt.Fprintf(&b, "UNIX.mode=0%o;", unixMode(fi.Mode()))
	}

	return b.String()
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

// filterList returns the entries of a cached listing that match pattern.
func filterList(list []os.FileInfo, pattern string) []os.FileInfo {
	if pattern == "" {
		return list
	}

	var out []os.FileInfo
	for _, fi := range list {
		if match(pattern, fi.Name()) {
			out = append(out, fi)
		}
	}

	return out
}

func isPattern(s string) bool {
	return strings.ContainsAny(s, "*?")
}

// nameOnly is a directory entry known by its name alone, for NLST.
type nameOnly string

func (n nameOnly) Name() string     { return string(n) }
func (nameOnly) Size() int64        { return 0 }
func (nameOnly) Mode() fs.FileMode  { return 0 }
func (nameOnly) ModTime() time.Time { return time.Time{} }
func (nameOnly) IsDir() bool        { return false }
func (nameOnly) Sys() any           { return nil }

// match reports whether name matches pattern, where * is any run of
// characters and ? any one. Segments between stars are matched greedily
// left to right, which is exact for this grammar and never backtracks, so
// even a pattern of many stars costs at most len(name) × len(pattern).
func match(pattern, name string) bool {
	segments := strings.Split(pattern, "*")
	if len(segments) == 1 {
		return len(name) == len(pattern) && matchHere(pattern, name)
	}

	first, last := segments[0], segments[len(segments)-1]
	if len(name) < len(first)+len(last) || !matchHere(first, name) || !matchHere(last, name[len(name)-len(last):]) {
		return false
	}

	rest := name[len(first) : len(name)-len(last)]
	for _, seg := range segments[1 : len(segments)-1] {
		i := find(seg, rest)
		if i < 0 {
			return false
		}

		rest = rest[i+len(seg):]
	}

	return true
}

// matchHere reports whether s starts with seg, where ? matches any byte.
func matchHere(seg, s string) bool {
	if len(s) < len(seg) {
		return false
	}

	for i := range len(seg) {
		if seg[i] != '?' && seg[i] != s[i] {
			return false
		}
	}

	return true
}

// find returns the first index where seg matches in s, or -1.
func find(seg, s string) int {
	for i := 0; i+len(seg) <= len(s); i++ {
		if matchHere(seg, s[i:]) {
			return i
		}
	}

	return -1
}
