package s3

import (
	"context"
	"io"
	"io/fs"
	"iter"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"

	"wharf/vfs"
)

// listPage is how many keys one listing request asks for (the S3 maximum).
const listPage = 1000

// epoch is the modification time of every folder: S3 lists prefixes
// without one.
var epoch = time.Unix(0, 0).UTC()

// fileInfo describes a file (an object) or a folder (a prefix).
type fileInfo struct {
	name  string
	size  int64
	mtime time.Time
	dir   bool
}

var _ fs.FileInfo = fileInfo{}

func dirInfo(name string) fileInfo { return fileInfo{name: name, mtime: epoch, dir: true} }

// Name returns the base name.
func (fi fileInfo) Name() string { return fi.name }

// Size returns the object's size; 0 for a folder.
func (fi fileInfo) Size() int64 { return fi.size }

// Mode returns 0o644 for a file and a directory with 0o755 for a folder.
func (fi fileInfo) Mode() fs.FileMode {
	if fi.dir {
		return fs.ModeDir | 0o755
	}

	return 0o644
}

// ModTime returns the object's LastModified, or the Unix epoch for a folder.
func (fi fileInfo) ModTime() time.Time { return fi.mtime }

// IsDir reports whether this is a folder.
func (fi fileInfo) IsDir() bool { return fi.dir }

// Sys returns nil.
func (fi fileInfo) Sys() any { return nil }

// ListingKey names the listing of the folder dir (a virtual path) by its
// bucket and key prefix, which is what it lists: every session that reaches
// that prefix, from whatever home, sees the same entries, so a listing cache
// may share them (server.ListingKeyer).
func (f *Fs) ListingKey(dir string) string {
	return f.s.bucket + "/" + f.dirPrefix(clean(dir))
}

// dir is a folder opened for reading (LIST, NLST, MLSD, STAT). Readdir
// streams a delimited listing (ListObjectsV2 with "/", listPage keys per
// request): objects are files, with the size and time of the listing (no
// request per entry), common prefixes are folders. The folder's own marker
// and in-progress uploads (vfs.TempPrefix) are hidden.
type dir struct {
	vfs.NoBytes
	fs   *Fs
	info fileInfo

	mu     sync.Mutex
	next   func() (minio.ObjectInfo, bool) // the listing in progress, nil before the first Readdir
	stop   func()
	cancel context.CancelFunc
	done   bool
	closed bool
}

// Name returns the virtual path of the folder.
func (d *dir) Name() string { return d.Path }

// Stat returns the folder's info.
func (d *dir) Stat() (fs.FileInfo, error) { return d.info, nil }

// Readdir returns up to n entries (all if n <= 0), like os.File.Readdir:
// with n > 0, io.EOF at the end of the folder.
func (d *dir) Readdir(n int) ([]fs.FileInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, pathError("readdir", d.Path, fs.ErrClosed)
	}
	if d.next == nil && !d.done {
		ctx, cancel := context.WithCancel(context.Background())
		seq := d.fs.list(ctx, listOptions(d.fs.dirPrefix(d.Path), false, listPage))
		d.next, d.stop = iter.Pull(seq)
		d.cancel = cancel
	}
	var out []fs.FileInfo
	for !d.done && (n <= 0 || len(out) < n) {
		oi, ok := d.next()
		switch {
		case !ok:
			d.end()
		case oi.Err != nil:
			d.end()

			return out, d.fs.fail("readdir", d.Path, oi.Err)
		default:
			if info, ok := d.entry(oi); ok {
				out = append(out, info)
			}
		}
	}
	if n > 0 && len(out) == 0 {
		return nil, io.EOF
	}

	return out, nil
}

// end stops the listing.
func (d *dir) end() {
	d.done = true
	if d.stop != nil {
		d.stop()
		d.cancel()
		d.next, d.stop, d.cancel = nil, nil, nil
	}
}

// entry turns a listed key into the entry clients see, or reports false for
// keys that are no entry: the marker, in-progress uploads, and keys whose
// name could never be asked for ("", ".", "..", made by other tools).
func (d *dir) entry(oi minio.ObjectInfo) (fs.FileInfo, bool) {
	name := strings.TrimPrefix(oi.Key, d.fs.dirPrefix(d.Path))
	isDir := strings.HasSuffix(name, "/")
	name = strings.TrimSuffix(name, "/")
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") || strings.HasPrefix(name, vfs.TempPrefix) {
		return nil, false
	}
	if isDir {
		return dirInfo(name), true
	}

	return fileInfo{name: name, size: oi.Size, mtime: oi.LastModified}, true
}

// Readdirnames returns up to n names (all if n <= 0), like os.File.Readdirnames.
func (d *dir) Readdirnames(n int) ([]string, error) {
	infos, err := d.Readdir(n)
	names := make([]string, len(infos))
	for i, info := range infos {
		names[i] = info.Name()
	}

	return names, err
}

// Seek(0, io.SeekStart) restarts the listing; nothing else is supported.
func (d *dir) Seek(offset int64, whence int) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if offset != 0 || whence != io.SeekStart {
		return 0, pathError("seek", d.Path, syscall.EINVAL)
	}
	d.end()
	d.done = false

	return 0, nil
}

// Close ends the listing.
func (d *dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return pathError("close", d.Path, fs.ErrClosed)
	}
	d.closed = true
	d.end()

	return nil
}
