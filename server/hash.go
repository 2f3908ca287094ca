package server

import (
	"crypto/md5"  //nolint:gosec // MD5 is what XMD5 and MD5SUMS name, for integrity, not security
	"crypto/sha1" //nolint:gosec // as is SHA-1, for XSHA1 and SHA1SUMS
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"wharf/sums"
)

// HASH (draft-bryan-ftpext-hash-02) and the older XSHA256, XSHA512, XSHA1
// and XMD5 are answered from the checksum files a mirror already publishes
// beside its files (see package sums), never by reading a big file on
// demand: a server that hashes whole files whenever asked gives every
// client a lever to keep its disks and cores busy, which is why the engine
// keeps HASH off.
//
// The digest of /pub/a.iso comes from the first checksum file that names
// it and is not older than it (its modification time): in /pub, the names
// of Hash.Files in order (an exact name, "a.iso" + the pattern's suffix for
// a pattern "*suffix", then the folder's entries matching a pattern, at most
// maxListedSums of those); then, with Hash.SearchUp, in the folders above,
// whose checksum files name it by its path from there ("pub/a.iso"). An
// older checksum file is stale and skipped. Every file, the one asked
// about and the checksum files, is opened through the session's own view,
// so HASH sees exactly what RETR would: a folder, a missing, hidden or
// denied file, one the account may not read, get RETR's refusal.
//
// On an object store, when no checksum file names a file, the SHA-256 the
// store keeps with its object (StoredChecksums: vfs/s3 reads
// x-amz-checksum-sha256, and stores one with each upload that fits in one
// part) answers HASH in SHA-256 and XSHA256.
//
// Parsed checksum files are cached (sums.Cache) by device, inode,
// modification time and size, within maxSumsCache of memory; a checksum
// file over maxSumsFile is not read at all.

// DefaultHashFiles are [hash] files' default: the names Debian, Ubuntu,
// Fedora, CentOS and most mirrors publish.
func DefaultHashFiles() []string {
	return []string{"SHA256SUMS", "SHA512SUMS", "SHA1SUMS", "MD5SUMS", "CHECKSUMS",
		"*.sha256", "*.sha512", "*.sha1", "*.md5", "*CHECKSUM"}
}

// Hash is how HASH and the X* commands find digests (the [hash] table).
type Hash struct {
	// Files are the names of checksum files looked for, in order: exact
	// names, or path.Match patterns of one name. Nil means DefaultHashFiles.
	Files []string
	// SearchUp is how many folders above a file's own are looked in, for
	// checksum files naming it by its path from there; 0 looks in its own only.
	SearchUp int
	// ComputeMaxSize lets files up to this size be hashed on demand when no
	// checksum file names them; 0 never hashes.
	ComputeMaxSize int64
}

const (
	// maxSumsFile is the largest checksum file read: a bigger one (a hostile
	// 1 GiB "SHA256SUMS") is skipped unread, as if absent.
	maxSumsFile = 64 << 20
	// maxSumsCache bounds the memory of parsed checksum files kept.
	maxSumsCache = 128 << 20
	// maxListedSums bounds the checksum files found by a pattern in a
	// folder's listing that one HASH reads.
	maxListedSums = 8
	// hashWait is how long a HASH hashing on demand waits for a free core.
	hashWait = 30 * time.Second
)

var (
	// errNoPublished: no checksum file not older than the file names it.
	errNoPublished = errors.New("no published checksum")
	// errHashRange: a HASH of part of a file, which no checksum file gives.
	errHashRange = errors.New("published checksums cover whole files only")
	// errHashBusy: every core is hashing on demand for other sessions.
	errHashBusy = errors.New("every core is busy hashing: try again later")
)

// hashing is the server's share of HASH: the parsed checksum files, and a
// slot per core for hashing on demand (compute_max_size). A session hashes
// one file at a time (its commands run one at a time); all sessions
// together hash at most one file per core, and what they read counts
// against no bandwidth limit or transfer metric: it leaves by no data
// connection.
type hashing struct {
	cache *sums.Cache
	slots chan struct{}
}

func newHashing() *hashing {
	return &hashing{cache: sums.NewCache(maxSumsCache), slots: make(chan struct{}, runtime.GOMAXPROCS(0))}
}

// hashVerbs are the older commands, each naming its algorithm. They are
// answered "250 <hex>", as ProFTPD's mod_digest and FileZilla Server answer
// them (and FluentFTP and WinSCP read).
var hashVerbs = map[string]sums.Algo{"XSHA256": sums.SHA256, "XSHA512": sums.SHA512, "XSHA1": sums.SHA1, "XMD5": sums.MD5}

// hash answers HASH <path> with "213 <algo> 0-<size> <hex> <path>" in the
// session's algorithm (OPTS HASH), and XSHA256, XSHA512, XSHA1 and XMD5
// <path> with "250 <hex>".
func (c *control) hash(verb, arg string) {
	c.waitTransfer()

	name := strings.TrimSpace(arg)
	if len(name) >= 2 && name[0] == '"' && name[len(name)-1] == '"' {
		name = name[1 : len(name)-1] // FileZilla quotes a name with spaces
	}

	if name == "" {
		c.answer(501, "Syntax: "+verb+" <path>")

		return
	}

	algo, legacy := hashVerbs[verb]
	if !legacy {
		algo = c.proto.hashAlgo
	}

	target := c.abs(name)

	c.mu.Lock()
	rest := c.proto.rest
	c.mu.Unlock()

	if rest > 0 {
		c.refuse("", 550, verb+" of "+target+" from byte "+strconv.FormatInt(rest, 10)+" refused: "+
			errHashRange.Error()+". Send REST 0, then HASH.")

		return
	}

	sum, size, err := c.si.drv().digest(target, algo)
	switch {
	case errors.Is(err, errNoPublished):
		c.answer(550, "no published checksum ("+algo.String()+") for "+target+".")
	case errors.Is(err, errHashBusy):
		c.answer(450, sentence(errHashBusy.Error()))
	case err != nil:
		if reason := refusalReason(err); reason != "" {
			c.refused(verb, 550, reason, zap.String("path", truncate(target, maxLoggedPath)))
		}

		c.answerErr(storageCode(err, 550), err)
	case legacy:
		c.answer(250, hex.EncodeToString(sum))
	default:
		c.answer(213, algo.String()+" 0-"+strconv.FormatInt(size, 10)+" "+hex.EncodeToString(sum)+" "+name)
	}
}

// clearRest forgets the REST offset: the transfer about to run takes it.
func (c *control) clearRest() {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.proto.rest = 0
}

// optsHash answers OPTS HASH [algorithm]: the session's algorithm for HASH.
func (c *control) optsHash(value string) {
	value = strings.TrimSpace(value)
	if value == "" {
		c.answer(200, c.proto.hashAlgo.String())

		return
	}

	algo, ok := sums.ParseAlgo(value)
	if !ok {
		c.answer(504, "Unknown algorithm "+truncate(value, 16)+": use SHA-256, SHA-512, SHA-1 or MD5.")

		return
	}

	c.proto.hashAlgo = algo
	c.answer(200, algo.String())
}

// hashFeat is FEAT's HASH line, the session's algorithm marked with a star.
func (c *control) hashFeat() string {
	names := make([]string, len(sums.Algos))
	for i, a := range sums.Algos {
		names[i] = a.String()
		if a == c.proto.hashAlgo {
			names[i] += "*"
		}
	}

	return " HASH " + strings.Join(names, ";")
}

// digest is the digest of file name for algo, and its size: published, or
// hashed on demand within compute_max_size. The file is opened as RETR
// opens it, so what RETR refuses, this refuses with the same error.
func (s *session) digest(name string, algo sums.Algo) ([]byte, int64, error) {
	f, err := s.Open(name)
	if err != nil {
		return nil, 0, s.note(err)
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}

	if fi.IsDir() || !fi.Mode().IsRegular() {
		return nil, 0, &fs.PathError{Op: "open", Path: name, Err: errIsDirectory}
	}

	if sum, ok := s.published(name, fi, algo); ok {
		return sum, fi.Size(), nil
	}

	if sum, ok := s.stored(name, algo); ok {
		return sum, fi.Size(), nil
	}

	if limit := s.srv.opts.Hash.ComputeMaxSize; limit > 0 && fi.Size() <= limit {
		sum, err := s.compute(f, algo)

		return sum, fi.Size(), err
	}

	return nil, fi.Size(), errNoPublished
}

// StoredChecksums is a Root that keeps files' SHA-256 digests itself, as
// an object store keeps an object's x-amz-checksum-sha256 (vfs/s3's Fs).
// SHA256 returns name's, and false when none is kept for the whole file.
type StoredChecksums interface {
	SHA256(name string) ([]byte, bool, error)
}

// stored is name's SHA-256 as the storage keeps it, when it does: after
// the published files, which the mirror vouches for. On an object store the
// session's root is also its ListingKeyer.
func (s *session) stored(name string, algo sums.Algo) ([]byte, bool) {
	sc, ok := s.listings.(StoredChecksums)
	if !ok || algo != sums.SHA256 {
		return nil, false
	}

	sum, ok, err := sc.SHA256(name)

	return sum, ok && err == nil
}

// published looks for name's digest in the checksum files of its folder
// and, with search_up, of the folders above (see the top of this file).
func (s *session) published(name string, fi os.FileInfo, algo sums.Algo) ([]byte, bool) {
	dir, rel := path.Dir(name), path.Base(name)

	for up := 0; up <= s.srv.opts.Hash.SearchUp; up++ {
		if sum, ok := s.publishedIn(dir, rel, up == 0, fi, algo); ok {
			return sum, true
		}

		if dir == "/" {
			break
		}

		dir, rel = path.Dir(dir), path.Join(path.Base(dir), rel)
	}

	return nil, false
}

// publishedIn looks in the checksum files of folder dir for rel, the file's
// path from there (own: dir is the file's own folder).
func (s *session) publishedIn(dir, rel string, own bool, fi os.FileInfo, algo sums.Algo) ([]byte, bool) {
	patterns := s.srv.opts.Hash.Files
	if patterns == nil {
		patterns = DefaultHashFiles()
	}

	tried := map[string]bool{}
	try := func(cand string) ([]byte, bool) {
		if tried[cand] || cand == rel {
			return nil, false
		}

		tried[cand] = true

		return s.lookupSums(path.Join(dir, cand), rel, fi, algo)
	}

	globs := false
	for _, p := range patterns {
		if !isPattern(p) {
			if sum, ok := try(p); ok {
				return sum, true
			}

			continue
		}

		globs = true
		// "*.sha256" beside "a.iso" is "a.iso.sha256", tried without a listing.
		if suffix, ok := strings.CutPrefix(p, "*"); ok && own && !isPattern(suffix) {
			if sum, ok := try(rel + suffix); ok {
				return sum, true
			}
		}
	}

	if !globs {
		return nil, false
	}

	list, err := s.loadDir(dir)
	if err != nil {
		return nil, false
	}
	defer s.srv.listMem.drop(list)

	listed := 0
	for _, e := range list.entries {
		if listed == maxListedSums {
			break
		}

		if tried[e.Name()] || !e.Mode().IsRegular() || e.ModTime().Before(fi.ModTime()) || !matchesAny(patterns, e.Name()) {
			continue
		}

		listed++
		if sum, ok := try(e.Name()); ok {
			return sum, true
		}
	}

	return nil, false
}

func matchesAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}

	return false
}

// lookupSums looks for rel in the checksum file sumsPath, if the session
// may read it and it is not older than the file (fi).
func (s *session) lookupSums(sumsPath, rel string, fi os.FileInfo, algo sums.Algo) ([]byte, bool) {
	f, err := s.Open(sumsPath)
	if err != nil {
		return nil, false
	}
	defer f.Close()

	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > maxSumsFile || st.ModTime().Before(fi.ModTime()) {
		return nil, false
	}

	parse := func() (*sums.File, error) {
		return sums.Parse(f, path.Base(sumsPath), maxSumsFile)
	}

	var file *sums.File
	if id, ok := s.sumsID(sumsPath, st); ok {
		file, err = s.srv.hashing.cache.Get(sums.Key{ID: id, ModTime: st.ModTime(), Size: st.Size()}, parse)
	} else {
		file, err = parse()
	}

	if err != nil {
		return nil, false
	}

	return file.Lookup(rel, algo)
}

// sumsID names a checksum file in the cache: its device and inode on disk,
// the storage's own name for it on an object store; none otherwise (it is
// then parsed each time).
func (s *session) sumsID(name string, st os.FileInfo) (string, bool) {
	if id, ok := fileID(st); ok {
		return id, true
	}

	if s.listings != nil {
		return "store:" + s.listings.ListingKey(name), true
	}

	return "", false
}

// compute hashes the open file f on demand, in one of the server's slots.
func (s *session) compute(f io.Reader, algo sums.Algo) ([]byte, error) {
	timer := time.NewTimer(hashWait)
	defer timer.Stop()

	select {
	case s.srv.hashing.slots <- struct{}{}:
		defer func() { <-s.srv.hashing.slots }()
	case <-timer.C:
		return nil, errHashBusy
	}

	var h hash.Hash
	switch algo {
	case sums.SHA256:
		h = sha256.New()
	case sums.SHA512:
		h = sha512.New()
	case sums.SHA1:
		h = sha1.New() //nolint:gosec // see the import
	case sums.MD5:
		h = md5.New() //nolint:gosec // see the import
	}

	if _, err := io.Copy(h, io.LimitReader(f, s.srv.opts.Hash.ComputeMaxSize)); err != nil {
		return nil, err
	}

	return h.Sum(nil), nil
}
