package s3

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/minio/minio-go/v7"
	"github.com/spf13/afero"
	"go.uber.org/zap"

	"wharf/vfs"
)

// Limits on names: S3 keys have at most 1024 bytes, and MinIO (like most
// file systems under it) takes at most 255 bytes per path element.
const (
	maxKey  = 1024
	maxElem = 255
)

// writeFlags are the OpenFile flags that change something.
const writeFlags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREATE | os.O_TRUNC

// Fs is one session's tree: an afero.Fs whose "/" is a key prefix of the
// bucket. Names are virtual paths, cleaned before they become keys, so no
// name reaches a key outside the prefix. Fs is safe for concurrent use.
type Fs struct {
	s      *Store
	root   string // key prefix of "/": "" or ending in "/"
	closed atomic.Bool
}

var _ afero.Fs = (*Fs)(nil)

// Close marks the Fs closed: later calls fail with fs.ErrClosed. Files
// already open stay usable. There is nothing to release: the connection
// belongs to the Store.
func (f *Fs) Close() error {
	f.closed.Store(true)

	return nil
}

// Name returns the name of this afero.Fs implementation.
func (f *Fs) Name() string { return "s3" }

// clean returns the virtual path of name: absolute, without "." or ".."
// elements, empty elements or a trailing slash.
func clean(name string) string {
	return path.Clean("/" + name)
}

// key returns the object key of the virtual path v (not "/").
func (f *Fs) key(v string) string {
	return f.root + v[1:]
}

// dirPrefix returns the prefix shared by every key below the folder v; for a
// folder other than "/" it is also the key of the folder's marker object.
func (f *Fs) dirPrefix(v string) string {
	if v == "/" {
		return f.root
	}

	return f.root + v[1:] + "/"
}

// check refuses names that are closed to the client: those of in-progress
// uploads (vfs.TempPrefix), and names no key can have. A lookup of such a
// name fails with fs.ErrNotExist, creating one with
// ftpserver.ErrFileNameNotAllowed (reply 553).
func (f *Fs) check(op, v string, creating bool) error {
	if err := f.refuse(v, creating); err != nil {
		return pathError(op, v, err)
	}

	return nil
}

// refuse returns the cause for check, or nil.
func (f *Fs) refuse(v string, creating bool) error {
	switch {
	case f.closed.Load():
		return fs.ErrClosed
	case !strings.Contains(v, "/"+vfs.TempPrefix) && f.valid(v):
		return nil
	case creating:
		return ftpserver.ErrFileNameNotAllowed
	default:
		return fs.ErrNotExist
	}
}

// valid reports whether the virtual path v can be a key: valid UTF-8 (S3 keys
// are), no NUL, no element longer than maxElem bytes, and short enough to
// take a folder marker's slash.
func (f *Fs) valid(v string) bool {
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) || len(f.dirPrefix(v)) > maxKey {
		return false
	}
	for elem := range strings.SplitSeq(v[1:], "/") {
		if len(elem) > maxElem {
			return false
		}
	}

	return true
}

// Create creates or truncates the named file, as OpenFile(name,
// O_RDWR|O_CREATE|O_TRUNC, 0o666) does. The file is write-only.
func (f *Fs) Create(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Open opens the named file or folder for reading.
func (f *Fs) Open(name string) (afero.File, error) {
	return f.OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile opens the named file. Reading a file streams its object (see
// download); reading a folder lists it (see dir). Any write flag starts an
// upload (see upload), which is write-only whatever the flags say: S3 has no
// object that is read and written at once. perm is ignored.
func (f *Fs) OpenFile(name string, flag int, _ os.FileMode) (afero.File, error) {
	v := clean(name)
	writing := flag&writeFlags != 0
	if err := f.check("open", v, writing && flag&os.O_CREATE != 0); err != nil {
		return nil, err
	}
	if writing {
		return f.openUpload(v, flag)
	}
	ctx, cancel := opContext()
	defer cancel()
	var (
		info fileInfo
		etag string
	)
	err := retry(ctx, func(ctx context.Context) (err error) {
		info, etag, err = f.stat(ctx, v)

		return err
	})
	if err != nil {
		return nil, f.fail("open", v, err)
	}
	if info.IsDir() {
		return &dir{NoBytes: vfs.NoBytes{Path: v}, fs: f, info: info}, nil
	}

	return newDownload(f, v, info, etag), nil
}

// openUpload checks an upload to v and starts it. The parent must be a
// folder and v must not be one. Without O_TRUNC the existing object is kept
// up to the offset the engine seeks to (REST then STOR), or whole with
// O_APPEND (APPE). The checks only read, so a store that blinks has them
// tried again (retry).
func (f *Fs) openUpload(v string, flag int) (afero.File, error) {
	if v == "/" {
		return nil, pathError("open", v, syscall.EISDIR)
	}
	ctx, cancel := opContext()
	defer cancel()
	var old minio.ObjectInfo
	err := retry(ctx, func(ctx context.Context) (err error) {
		old, err = f.uploadTarget(ctx, v, flag)

		return err
	})
	if err != nil {
		return nil, f.fail("open", v, err)
	}

	u, err := newUpload(f, v, old, flag&os.O_APPEND != 0)
	if err != nil {
		return nil, err // not a nil *upload in the interface
	}

	return u, nil
}

// uploadTarget checks that v can be uploaded to with flag, and returns the
// object whose start the upload keeps (Key empty: none).
func (f *Fs) uploadTarget(ctx context.Context, v string, flag int) (minio.ObjectInfo, error) {
	if err := f.parentDir(ctx, v); err != nil {
		return minio.ObjectInfo{}, err
	}
	isDir, err := f.dirExists(ctx, v)
	switch {
	case err != nil:
		return minio.ObjectInfo{}, err
	case isDir:
		return minio.ObjectInfo{}, syscall.EISDIR
	}
	if flag&os.O_TRUNC != 0 && flag&(os.O_EXCL|os.O_CREATE) == os.O_CREATE {
		return minio.ObjectInfo{}, nil // a new object, whatever was there
	}
	old, err := f.s.core.StatObject(ctx, f.s.bucket, f.key(v), minio.StatObjectOptions{})
	switch {
	case err == nil && flag&os.O_EXCL != 0:
		return minio.ObjectInfo{}, fs.ErrExist
	case notFound(err) && flag&os.O_CREATE != 0:
		return minio.ObjectInfo{}, nil
	case err != nil:
		return minio.ObjectInfo{}, err
	case flag&os.O_TRUNC != 0:
		return minio.ObjectInfo{}, nil
	}

	return old, nil
}

// stat returns the info of v and, for a file, its ETag. A file is an object
// with v's key; a folder is "/", or any key below v's prefix (its marker or
// its content).
func (f *Fs) stat(ctx context.Context, v string) (fileInfo, string, error) {
	if v == "/" {
		return dirInfo("/"), "", nil
	}
	oi, err := f.s.core.StatObject(ctx, f.s.bucket, f.key(v), minio.StatObjectOptions{})
	if err == nil {
		return fileInfo{name: path.Base(v), size: oi.Size, mtime: oi.LastModified}, oi.ETag, nil
	}
	if !notFound(err) {
		return fileInfo{}, "", err
	}
	isDir, err := f.dirExists(ctx, v)
	switch {
	case err != nil:
		return fileInfo{}, "", err
	case !isDir:
		return fileInfo{}, "", fs.ErrNotExist
	}

	return dirInfo(path.Base(v)), "", nil
}

// dirExists reports whether the folder v exists: "/" always does, any other
// folder while a key starts with its prefix.
func (f *Fs) dirExists(ctx context.Context, v string) (bool, error) {
	if v == "/" {
		return true, nil
	}
	keys, err := f.firstKeys(ctx, f.dirPrefix(v), 1)

	return len(keys) > 0, err
}

// firstKeys returns up to n keys that start with prefix, at any depth.
func (f *Fs) firstKeys(ctx context.Context, prefix string, n int) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var keys []string
	for oi := range f.s.core.ListObjectsIter(ctx, f.s.bucket, listOptions(prefix, true, n)) {
		if oi.Err != nil {
			return nil, oi.Err
		}
		keys = append(keys, oi.Key)
		if len(keys) == n {
			break
		}
	}

	return keys, nil
}

// listOptions lists the keys below prefix, recursive or one level at a time,
// pageSize keys per request.
func listOptions(prefix string, recursive bool, pageSize int) minio.ListObjectsOptions {
	noOwner := false

	return minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive, MaxKeys: pageSize, FetchOwner: &noOwner}
}

// parentDir checks that the parent of v is a folder, before v is created:
// fs.ErrNotExist if it is missing, syscall.ENOTDIR if it is a file.
func (f *Fs) parentDir(ctx context.Context, v string) error {
	parent := path.Dir(v)
	ok, err := f.dirExists(ctx, parent)
	if err != nil || ok {
		return err
	}
	_, err = f.s.core.StatObject(ctx, f.s.bucket, f.key(parent), minio.StatObjectOptions{})
	switch {
	case err == nil:
		return syscall.ENOTDIR
	case notFound(err):
		return fs.ErrNotExist
	default:
		return err
	}
}

// putMarker creates the marker object of the folder v.
func (f *Fs) putMarker(ctx context.Context, v string) error {
	_, err := f.s.core.PutObject(ctx, f.s.bucket, f.dirPrefix(v), strings.NewReader(""), 0, "", "", minio.PutObjectOptions{})

	return err
}

// keepDir gives the folder v a marker if it no longer exists, after its last
// object was removed or moved away, as a folder on disk outlives its files.
// Failures are only logged: the operation itself succeeded.
func (f *Fs) keepDir(ctx context.Context, v string) {
	ok, err := f.dirExists(ctx, v)
	if err == nil && !ok {
		err = f.putMarker(ctx, v)
	}
	if err != nil {
		f.s.log.Warn("cannot keep folder", zap.String("path", v), zap.String("root", f.root), zap.Error(err))
	}
}

// Mkdir creates the folder name: its marker object. Its parent must exist.
func (f *Fs) Mkdir(name string, _ os.FileMode) error {
	v := clean(name)
	if err := f.check("mkdir", v, true); err != nil {
		return err
	}
	if v == "/" {
		return pathError("mkdir", v, fs.ErrExist)
	}
	ctx, cancel := opContext()
	defer cancel()
	if err := f.parentDir(ctx, v); err != nil {
		return f.fail("mkdir", v, err)
	}
	_, _, err := f.stat(ctx, v)
	switch {
	case err == nil:
		return pathError("mkdir", v, fs.ErrExist)
	case !notFound(err):
		return f.fail("mkdir", v, err)
	}
	if err := f.putMarker(ctx, v); err != nil {
		return f.fail("mkdir", v, err)
	}

	return nil
}

// MkdirAll creates the folder name and every missing parent, each with its
// marker. A file in the way fails with syscall.ENOTDIR.
func (f *Fs) MkdirAll(name string, _ os.FileMode) error {
	v := clean(name)
	if err := f.check("mkdir", v, true); err != nil {
		return err
	}
	ctx, cancel := opContext()
	defer cancel()
	for i := 1; i <= len(v); i++ {
		if i < len(v) && v[i] != '/' {
			continue
		}
		level := v[:i]
		if level == "/" {
			continue
		}
		info, _, err := f.stat(ctx, level)
		switch {
		case err == nil && info.IsDir():
			continue
		case err == nil:
			return pathError("mkdir", v, syscall.ENOTDIR)
		case !notFound(err):
			return f.fail("mkdir", v, err)
		}
		if err := f.putMarker(ctx, level); err != nil {
			return f.fail("mkdir", v, err)
		}
	}

	return nil
}

// Remove removes the named file, or the named folder if it is empty (only
// its marker is left); a folder with content fails with syscall.ENOTEMPTY.
// "/" cannot be removed. The parent folder stays, even when this was its
// last entry.
func (f *Fs) Remove(name string) error {
	v := clean(name)
	if err := f.check("remove", v, false); err != nil {
		return err
	}
	if v == "/" {
		return pathError("remove", v, fs.ErrPermission)
	}
	ctx, cancel := opContext()
	defer cancel()
	info, _, err := f.stat(ctx, v)
	if err != nil {
		return f.fail("remove", v, err)
	}
	victim := f.key(v)
	if info.IsDir() {
		keys, err := f.firstKeys(ctx, f.dirPrefix(v), 2)
		if err != nil {
			return f.fail("remove", v, err)
		}
		if len(keys) != 1 || keys[0] != f.dirPrefix(v) {
			return pathError("remove", v, syscall.ENOTEMPTY)
		}
		victim = keys[0]
	}
	if err := f.s.core.RemoveObject(ctx, f.s.bucket, victim, minio.RemoveObjectOptions{}); err != nil {
		return f.fail("remove", v, err)
	}
	f.keepDir(ctx, path.Dir(v))

	return nil
}

// RemoveAll removes the named file or folder and everything below it. Like
// os.RemoveAll it returns nil if nothing has the name, which includes the
// names of in-progress uploads. "/" cannot be removed. Only keys below the
// session's prefix are listed, so nothing else can go.
func (f *Fs) RemoveAll(name string) error {
	v := clean(name)
	if err := f.check("remove", v, false); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}

		return err
	}
	if v == "/" {
		return pathError("remove", v, fs.ErrPermission)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	keys := []string{f.key(v)}
	for oi := range f.s.core.ListObjectsIter(ctx, f.s.bucket, listOptions(f.dirPrefix(v), true, 0)) {
		if oi.Err != nil {
			return f.fail("remove", v, oi.Err)
		}
		keys = append(keys, oi.Key)
	}
	if err := f.removeKeys(ctx, keys); err != nil {
		return f.fail("remove", v, err)
	}
	f.keepDir(ctx, path.Dir(v))

	return nil
}

// removeKeys deletes keys (1000 per request); missing keys are no error.
func (f *Fs) removeKeys(ctx context.Context, keys []string) error {
	seq := func(yield func(minio.ObjectInfo) bool) {
		for _, k := range keys {
			if !yield(minio.ObjectInfo{Key: k}) {
				return
			}
		}
	}
	results, err := f.s.core.RemoveObjectsWithIter(ctx, f.s.bucket, seq, minio.RemoveObjectsOptions{})
	if err != nil {
		return err
	}
	for r := range results {
		if r.Err != nil {
			err = r.Err
		}
	}

	return err
}

// Stat returns the FileInfo of the named file or folder. Files report the
// object's size and modification time; folders report the Unix epoch, as
// listings must (S3 lists prefixes without a time).
func (f *Fs) Stat(name string) (os.FileInfo, error) {
	v := clean(name)
	if err := f.check("stat", v, false); err != nil {
		return nil, err
	}
	ctx, cancel := opContext()
	defer cancel()
	var info fileInfo
	err := retry(ctx, func(ctx context.Context) (err error) {
		info, _, err = f.stat(ctx, v)

		return err
	})
	if err != nil {
		return nil, f.fail("stat", v, err)
	}

	return info, nil
}

// Chmod is refused: objects have no permission bits.
func (f *Fs) Chmod(name string, _ os.FileMode) error {
	return pathError("chmod", clean(name), ErrNoModes)
}

// Chown is refused: objects have no owners.
func (f *Fs) Chown(name string, _, _ int) error {
	return pathError("chown", clean(name), ErrNoModes)
}

// Chtimes is refused with ErrNoTimes (so MFMT fails with 550): S3 sets
// LastModified itself. Pretending to succeed would make mirror clients
// believe that the time was set.
func (f *Fs) Chtimes(name string, _, _ time.Time) error {
	return pathError("chtimes", clean(name), ErrNoTimes)
}
