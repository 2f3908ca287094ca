package server

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/afero"
	"go.uber.org/zap"

	"wharf/auth"
	"wharf/sums"
	"wharf/vfs"
)

// Crawlers (MirrorManager, mirrorbits) learn what a mirror holds by walking
// every folder with LIST and MDTM. With [manifest] enabled, wharf serves two
// files it makes itself at the root of the anonymous tree instead:
//
//   - /ls-lR.gz: the tree as GNU "ls -lR" prints it from the root, gzipped:
//     ".:" then "./pub:" headers, "total N" (1 KiB blocks), and the lines of
//     wharf's LIST; a folder's subfolders follow it, depth first, in name
//     order.
//   - /manifest.json: {"root": "/", "generated": ..., "files": [{"path",
//     "size", "mtime", "sha256"}, ...], "entries": N, "truncated": false}: every
//     regular file, with its SHA-256 where a checksum file publishes it (the
//     rules of HASH, hash.go: not older than the file).
//
// Both show exactly what an anonymous session lists: the tree is read through
// the anonymous account's view (confinement, [listing] deny, world-readable
// only, links shown as links and never entered), and hidden names ([listing]
// hide), dotfiles and the anonymous upload_dir are left out, as LIST leaves
// them out.
//
// They are made in the background: at start, then every Manifest.Interval
// when the modification time of a folder walked last time changed (rsync and
// every atomic update rename into a folder, which changes its time), and at
// least every manifestMaxAge. A walk stops at MaxEntries entries or after
// TimeLimit (shutdown stops it too), and reads a folder as far as LIST does
// (max_list_entries); the files then say they are truncated (manifest.json
// "truncated": true and why; ls-lR.gz ends with a "# truncated" line). Each pair is
// written to temporary files, then renamed into place: a session is served
// the last complete pair, a download that started goes on reading the one it
// opened, and before the first pair exists the names answer 550 in words
// (and are not listed).
//
// A real file of either name at a root wins: it is served and listed, and
// the virtual one is not.

// Manifest is the [manifest] table.
type Manifest struct {
	// Enabled serves /ls-lR.gz and /manifest.json.
	Enabled bool
	// Interval is how often the tree is looked at for changes.
	Interval time.Duration
	// MaxEntries bounds the entries one walk writes; 0 means no bound.
	MaxEntries int
	// TimeLimit bounds one walk; 0 means no bound.
	TimeLimit time.Duration
}

// The names of the virtual files, in each manifest root.
const (
	lsLRName       = "ls-lR.gz"
	manifestName   = "manifest.json"
	manifestMaxAge = time.Hour
)

// errManifestNotReady answers for a manifest not made yet.
var errManifestNotReady = errors.New("the manifest is being made for the first time: try again in a minute")

// errManifestGone answers a session that holds a snapshot copy no manifest
// was made of (it was current before this server started).
var errManifestGone = errors.New("no manifest was made of the copy of this mirror that this session reads: " +
	"a new session reads the current copy and its manifest")

// manifests makes and serves the manifests of the anonymous tree's roots:
// "/" and whatever RegisterManifest adds (snapshot paths).
type manifests struct {
	srv  *Server
	opts Manifest
	dir  string // where the files are written: a temporary folder of the server's own
	log  *zap.Logger

	mu    sync.Mutex
	roots map[string]*manifestRoot // by virtual path of the anonymous tree

	wake   chan struct{}
	ctx    context.Context // cancelled by shutdown: a walk in progress stops
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// manifestRoot is one root's manifest: the last complete pair, and what its
// walk saw, to tell whether the tree changed.
type manifestRoot struct {
	id      int // names its files on disk
	path    string
	current atomic.Pointer[manifestFiles]
	// snapshot: path is a [[snapshots]] link. Each walk reads one copy
	// (pinned for the walk), and the pairs of older copies are kept, in
	// older by copy name (under manifests.mu), while sessions hold them.
	snapshot bool
	older    map[string]*manifestFiles
	folders  []folderTime // the folders the last walk read
	made     time.Time
	made0    bool // a walk finished once
	gen      int  // walks made, naming their files
}

type folderTime struct {
	path string
	mod  time.Time
}

// manifestFiles is one complete pair, as sessions are served it.
type manifestFiles struct {
	ls, json     string // files on disk
	lsFI, jsonFI os.FileInfo
	copy         string // the snapshot copy it describes; "" for a plain folder
}

// remove deletes the pair's files; downloads of it keep their open file.
func (f *manifestFiles) remove() {
	_ = os.Remove(f.ls)
	_ = os.Remove(f.json)
}

func newManifests(s *Server, opts Manifest) *manifests {
	if !opts.Enabled {
		return nil
	}

	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Minute
	}

	m := &manifests{
		srv: s, opts: opts, log: s.log.Named("manifest"), roots: map[string]*manifestRoot{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.roots["/"] = &manifestRoot{path: "/"}

	return m
}

// RegisterManifest makes and serves a manifest of the folder at dir, a
// virtual path of the anonymous tree, beside the root's: dir/ls-lR.gz and
// dir/manifest.json. It is made at the next look; nothing happens when
// [manifest] is off.
func (s *Server) RegisterManifest(dir string) {
	s.registerManifest(dir, false)
}

// registerManifest is RegisterManifest; snapshot says dir is a
// [[snapshots]] link (New and Reload register each). A snapshot's manifest
// is made of one copy at a time, the walk holding it as a session does, and
// made again when the link names another copy; a session is served the
// manifest of the copy it holds, as long as some session holds that copy.
func (s *Server) registerManifest(dir string, snapshot bool) {
	m := s.manifests
	if m == nil {
		return
	}

	dir = path.Clean("/" + dir)

	m.mu.Lock()
	if r := m.roots[dir]; r == nil {
		m.roots[dir] = &manifestRoot{id: len(m.roots), path: dir, snapshot: snapshot, older: map[string]*manifestFiles{}}
	} else if snapshot {
		r.snapshot = true
	}
	m.mu.Unlock()

	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// start makes the first manifests and looks again every interval, until
// shutdown. Without a temporary folder to write them in, the files answer
// "not made yet" and the log says why.
func (m *manifests) start() {
	if m == nil {
		return
	}

	dir, err := os.MkdirTemp("", "wharf-manifest-")
	if err != nil {
		m.log.Error("manifest off: cannot make a temporary folder", zap.Error(err))

		return
	}

	m.dir = dir

	go m.loop()
}

func (m *manifests) loop() {
	defer close(m.done)

	ticker := time.NewTicker(m.opts.Interval)
	defer ticker.Stop()

	for {
		m.refresh()

		select {
		case <-m.ctx.Done():
			return
		case <-ticker.C:
		case <-m.wake:
		}
	}
}

// shutdown stops the loop, waits for a walk in progress, and removes the files.
func (m *manifests) shutdown() {
	if m == nil || m.dir == "" {
		return
	}

	m.once.Do(func() {
		m.cancel()
		<-m.done
		_ = os.RemoveAll(m.dir)
	})
}

// refresh makes the manifests of every root whose tree changed.
func (m *manifests) refresh() {
	m.mu.Lock()
	roots := make([]*manifestRoot, 0, len(m.roots))
	for _, r := range m.roots {
		roots = append(roots, r)
	}
	m.mu.Unlock()

	slices.SortFunc(roots, func(a, b *manifestRoot) int { return strings.Compare(a.path, b.path) })

	for _, r := range roots {
		if m.ctx.Err() != nil {
			return
		}

		if err := m.refreshRoot(r); err != nil {
			m.log.Warn("manifest not made", zap.String("path", r.path), zap.Error(err))
		}
	}
}

// anonymousView opens the tree as an anonymous session sees it (readView),
// with pins when a snapshot's walk holds its copy; disk is nil off disk.
func (m *manifests) anonymousView(pins *vfs.Pins) (afero.Fs, *vfs.Fs, auth.Account, func() error, error) {
	acct, err := m.srv.accounts.Load().Authenticate("anonymous", "manifest@wharf")
	if err != nil {
		return nil, nil, acct, nil, errors.New("anonymous logins are off")
	}

	root, release, err := m.srv.openRoot(acct.Home)
	if err != nil {
		return nil, nil, acct, nil, fmt.Errorf("open the anonymous root %s: %w", acct.Home, err)
	}

	view, disk := readView(root, acct, pins)

	return view, disk, acct, release, nil
}

// refreshRoot walks r's tree again if a folder of it changed since the last walk.
func (m *manifests) refreshRoot(r *manifestRoot) error {
	m.mu.Lock()
	snapshot := r.snapshot
	m.mu.Unlock()

	// A snapshot's walk holds the copy its link names as it starts, as a
	// session would, so the whole walk reads one copy.
	var pins *vfs.Pins
	if snapshot {
		if pins = m.srv.snaps.pins(); pins != nil {
			defer pins.Release()
		}
	}

	view, disk, acct, release, err := m.anonymousView(pins)
	if err != nil {
		return err
	}
	defer func() { _ = release() }()

	var copyName string

	if disk != nil && snapshot {
		_, _ = view.Stat(r.path) // goes through the link: holds its copy
		if copyName, _, err = disk.SnapshotCopy(r.path); err != nil {
			return fmt.Errorf("snapshot %s: %w", r.path, err)
		}

		m.forgetOlder(r, copyName)
	}

	if cur := r.current.Load(); r.made0 && time.Since(r.made) < manifestMaxAge && !changed(view, r.folders) &&
		cur != nil && cur.copy == copyName {
		return nil
	}

	start := time.Now()
	w := &manifestWalk{
		fsys: view, root: r.path, hash: m.srv.opts.Hash, cache: m.srv.hashing.cache, hide: m.srv.opts.Listing.Hide,
		max: m.opts.MaxEntries, perFolder: m.srv.opts.MaxListEntries, now: start, seen: map[string]bool{},
	}
	if acct.UploadDir != "" {
		w.skip = path.Join("/", acct.UploadDir)
	}

	ctx := m.ctx
	if m.opts.TimeLimit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.opts.TimeLimit)
		defer cancel()
	}

	r.gen++
	files, err := w.write(ctx, filepath.Join(m.dir, strconv.Itoa(r.id)+"-"+strconv.Itoa(r.gen)+"-"))
	if err != nil {
		return err
	}

	if m.ctx.Err() != nil {
		return nil // shutting down: the walk was cut, not timed out
	}

	// Each pair has names of its own, so that a session never reads one
	// pair's file with the other's size. Downloads of the old pair keep
	// their open file.
	files.copy = copyName
	if old := r.current.Swap(files); old != nil {
		if old.copy != copyName {
			m.mu.Lock()
			r.older[old.copy] = old
			m.mu.Unlock()
		} else {
			old.remove()
		}
	}

	r.folders, r.made, r.made0 = w.folders, start, true

	m.log.Info("manifest made", zap.String("path", r.path), zap.Int("entries", w.entries), zap.Bool("truncated", w.truncated != ""),
		zap.Duration("duration", time.Since(start)))

	return nil
}

// forgetOlder removes the pairs of r's older copies that no session holds
// any more, and the one of the copy about to be made again (current).
func (m *manifests) forgetOlder(r *manifestRoot, current string) {
	m.mu.Lock()
	defer m.mu.Unlock()

	for c, f := range r.older {
		if c == current || !m.srv.snaps.held(r.path, c) {
			f.remove()
			delete(r.older, c)
		}
	}
}

// pick is the pair a session holding snapshot copy copyName ("" for none,
// or a plain folder) is served at r.
func (m *manifests) pick(r *manifestRoot, copyName string) *manifestFiles {
	cur := r.current.Load()
	if cur == nil || copyName == "" || cur.copy == copyName {
		return cur
	}

	m.mu.Lock()
	defer m.mu.Unlock()

	return r.older[copyName]
}

// changed reports whether a folder's modification time differs from the
// last walk's, or a folder is gone.
func changed(view afero.Fs, folders []folderTime) bool {
	for _, f := range folders {
		st, err := view.Stat(f.path)
		if err != nil || !st.ModTime().Equal(f.mod) {
			return true
		}
	}

	return false
}

// manifestWalk is one walk of a root's tree, writing both files as it goes.
type manifestWalk struct {
	fsys  afero.Fs
	root  string
	skip  string // the anonymous upload_dir, left out
	hash  Hash
	cache *sums.Cache
	hide  []string
	max   int
	// perFolder is max_list_entries: a folder is read as far as LIST reads it.
	perFolder int
	now       time.Time

	ls        *gzip.Writer
	json      io.Writer
	entries   int
	files     int
	truncated string // why the manifest is not the whole tree
	stopped   bool   // the walk stopped early
	folders   []folderTime
	seen      map[string]bool // folders by device and inode: a loop ends
	sums      []folderSums    // the checksum files of the folders above, for search_up
	err       error
}

// folderSums are the parsed checksum files of one folder on the walk's path.
type folderSums struct {
	dir   string
	files []parsedSums
}

type parsedSums struct {
	file *sums.File
	mod  time.Time
}

// write walks the tree and writes both files, renamed into place once
// complete as base + their names.
func (w *manifestWalk) write(ctx context.Context, base string) (*manifestFiles, error) {
	dir := filepath.Dir(base)
	lsTmp, err := os.CreateTemp(dir, ".ls-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(lsTmp.Name())
	defer lsTmp.Close()

	jsonTmp, err := os.CreateTemp(dir, ".json-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(jsonTmp.Name())
	defer jsonTmp.Close()

	lsBuf, jsonBuf := bufio.NewWriterSize(lsTmp, 64<<10), bufio.NewWriterSize(jsonTmp, 64<<10)
	w.ls, w.json = gzip.NewWriter(lsBuf), jsonBuf

	fmt.Fprintf(w.json, `{"generator":"wharf","root":%s,"generated":"%s","files":[`, jsonString(w.root), w.now.UTC().Format(time.RFC3339))

	w.walk(ctx, w.root, ".")

	if w.err != nil {
		return nil, w.err
	}

	if w.truncated != "" {
		fmt.Fprintf(w.ls, "\n# truncated by wharf: %s\n", w.truncated)
	}

	fmt.Fprintf(w.json, "\n],\"entries\":%d,\"truncated\":%t", w.entries, w.truncated != "")
	if w.truncated != "" {
		fmt.Fprintf(w.json, ",\"truncated_because\":%s", jsonString(w.truncated))
	}
	fmt.Fprint(w.json, "}\n")

	if err := w.ls.Close(); err != nil {
		return nil, err
	}

	for _, b := range []*bufio.Writer{lsBuf, jsonBuf} {
		if err := b.Flush(); err != nil {
			return nil, err
		}
	}

	files := &manifestFiles{ls: base + lsLRName, json: base + manifestName}
	for _, f := range []struct {
		tmp        *os.File
		file, name string
		fi         *os.FileInfo
	}{{lsTmp, files.ls, lsLRName, &files.lsFI}, {jsonTmp, files.json, manifestName, &files.jsonFI}} {
		if err := f.tmp.Chmod(0o644); err != nil {
			return nil, err
		}

		if err := os.Rename(f.tmp.Name(), f.file); err != nil {
			return nil, err
		}

		st, err := os.Stat(f.file)
		if err != nil {
			return nil, err
		}

		*f.fi = virtualInfo{name: f.name, size: st.Size(), mod: st.ModTime()}
	}

	return files, nil
}

// walk writes folder dir (shown as rel: ".", "./pub"), then its subfolders.
func (w *manifestWalk) walk(ctx context.Context, dir, rel string) {
	if w.err != nil || w.stopped {
		return
	}

	if ctx.Err() != nil {
		w.stop("time_limit reached")

		return
	}

	f, err := w.fsys.Open(dir)
	if err != nil {
		if rel == "." {
			w.err = err // the root itself: no manifest
		}

		return // gone since its parent was read, or not readable: ls would say so on stderr
	}

	st, _ := f.Stat()
	all, full, err := readFolder(f, w.perFolder)
	_ = f.Close()

	if err != nil {
		return
	}

	if !full {
		w.truncated = "a folder holds more than max_list_entries (" + strconv.Itoa(w.perFolder) + "): " + dir
	}

	if st != nil {
		if id, ok := fileID(st); ok {
			if w.seen[id] {
				return
			}

			w.seen[id] = true
		}

		w.folders = append(w.folders, folderTime{path: dir, mod: st.ModTime()})
	}

	slices.SortFunc(all, func(a, b os.FileInfo) int { return strings.Compare(a.Name(), b.Name()) })
	w.sums = append(w.sums, folderSums{dir: dir, files: w.parseSums(dir, all)})
	defer func() { w.sums = w.sums[:len(w.sums)-1] }()

	shown := all[:0:0]
	for _, fi := range all {
		if w.shown(dir, fi) {
			shown = append(shown, fi)
		}
	}

	var blocks int64
	for _, fi := range shown {
		blocks += kib(fi)
	}

	if rel != "." {
		_, _ = io.WriteString(w.ls, "\n")
	}

	_, _ = fmt.Fprintf(w.ls, "%s:\ntotal %d\n", rel, blocks)

	var subdirs []string
	line := make([]byte, 0, 128)

	for _, fi := range shown {
		if w.max > 0 && w.entries >= w.max {
			w.stop("max_entries (" + strconv.Itoa(w.max) + ") reached")

			return
		}

		if w.entries%1024 == 0 && ctx.Err() != nil {
			w.stop("time_limit reached")

			return
		}

		w.entries++
		line = append(appendLsLine(line[:0], fi, w.now), '\n')
		_, _ = w.ls.Write(line)

		_, isLink := fi.(linkInfo)
		switch {
		case isLink || fi.Mode()&fs.ModeSymlink != 0:
		case fi.IsDir():
			subdirs = append(subdirs, fi.Name())
		case fi.Mode().IsRegular():
			w.writeFile(path.Join(dir, fi.Name()), fi)
		}
	}

	for _, name := range subdirs {
		w.walk(ctx, path.Join(dir, name), rel+"/"+name)
	}
}

// stop ends the walk early, for why.
func (w *manifestWalk) stop(why string) {
	w.stopped, w.truncated = true, why
}

// readFolder reads folder f's entries, at most limit of them (0: all); full
// is false when there were more.
func readFolder(f afero.File, limit int) ([]os.FileInfo, bool, error) {
	var all []os.FileInfo

	for {
		batch, err := f.Readdir(readBatch)
		all = append(all, batch...)

		if limit > 0 && len(all) > limit {
			return all[:limit], false, nil
		}

		switch {
		case errors.Is(err, io.EOF) || (err == nil && len(batch) == 0):
			return all, true, nil
		case err != nil:
			return nil, false, err
		}
	}
}

// shown reports whether LIST shows fi (without -a): no dotfiles, no hidden
// names, no names with a line break, not the anonymous upload_dir.
func (w *manifestWalk) shown(dir string, fi os.FileInfo) bool {
	name := fi.Name()
	if strings.HasPrefix(name, ".") || strings.ContainsAny(name, "\r\n") || path.Join(dir, name) == w.skip {
		return false
	}

	for _, pattern := range w.hide {
		if ok, _ := path.Match(pattern, name); ok {
			return false
		}
	}

	return true
}

// jsonString is s as a JSON string (Go's %q is not JSON for every string).
func jsonString(s string) string {
	b, _ := json.Marshal(s)

	return string(b)
}

// kib is the 1 KiB blocks ls counts in "total" for fi.
func kib(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks / 2
	}

	return (fi.Size() + 1023) / 1024
}

// manifestEntry is one file of manifest.json.
type manifestEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	MTime  string `json:"mtime"`
	SHA256 string `json:"sha256,omitempty"`
}

func (w *manifestWalk) writeFile(name string, fi os.FileInfo) {
	e := manifestEntry{Path: name, Size: fi.Size(), MTime: fi.ModTime().UTC().Format(time.RFC3339)}
	if sum, ok := w.published(name, fi); ok {
		e.SHA256 = hex.EncodeToString(sum)
	}

	b, err := json.Marshal(e)
	if err != nil {
		w.err = err

		return
	}

	sep := ",\n"
	if w.files == 0 {
		sep = "\n"
	}

	w.files++
	_, _ = io.WriteString(w.json, sep)
	_, _ = w.json.Write(b)
}

// published is name's SHA-256 from the checksum files of its folder and,
// with search_up, the folders above it on the walk (as HASH finds it).
func (w *manifestWalk) published(name string, fi os.FileInfo) ([]byte, bool) {
	rel := path.Base(name)

	for i := len(w.sums) - 1; i >= 0 && i >= len(w.sums)-1-w.hash.SearchUp; i-- {
		for _, p := range w.sums[i].files {
			if p.mod.Before(fi.ModTime()) {
				continue
			}

			if sum, ok := p.file.Lookup(rel, sums.SHA256); ok {
				return sum, true
			}
		}

		if i > 0 {
			rel = path.Join(path.Base(w.sums[i].dir), rel)
		}
	}

	return nil, false
}

// parseSums parses the checksum files among folder dir's entries.
func (w *manifestWalk) parseSums(dir string, entries []os.FileInfo) []parsedSums {
	patterns := w.hash.Files
	if patterns == nil {
		patterns = DefaultHashFiles()
	}

	var out []parsedSums
	for _, fi := range entries {
		if !fi.Mode().IsRegular() || fi.Size() > maxSumsFile || !matchesAny(patterns, fi.Name()) {
			continue
		}

		name := path.Join(dir, fi.Name())
		parse := func() (*sums.File, error) {
			f, err := w.fsys.Open(name)
			if err != nil {
				return nil, err
			}
			defer f.Close()

			return sums.Parse(f, fi.Name(), maxSumsFile)
		}

		var file *sums.File
		var err error
		if id, ok := fileID(fi); ok {
			file, err = w.cache.Get(sums.Key{ID: id, ModTime: fi.ModTime(), Size: fi.Size()}, parse)
		} else {
			file, err = parse()
		}

		if err == nil && file.Len() > 0 {
			out = append(out, parsedSums{file: file, mod: fi.ModTime()})
		}
	}

	return out
}

// virtualInfo is a file wharf makes, as listings and SIZE/MDTM show it.
type virtualInfo struct {
	name string
	size int64
	mod  time.Time
}

func (v virtualInfo) Name() string       { return v.name }
func (v virtualInfo) Size() int64        { return v.size }
func (v virtualInfo) Mode() fs.FileMode  { return 0o644 }
func (v virtualInfo) ModTime() time.Time { return v.mod }
func (v virtualInfo) IsDir() bool        { return false }
func (v virtualInfo) Sys() any           { return nil }
