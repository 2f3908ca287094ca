package s3

import (
	"context"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/minio/minio-go/v7"
)

const (
	// maxRenameKeys bounds the objects of a folder that Rename copies: the
	// client waits for the whole copy, on its control connection.
	maxRenameKeys = 10_000
	// copyWorkers is how many objects of a folder are copied at once.
	copyWorkers = 8
	// maxCopy is the largest object that one CopyObject request copies;
	// larger ones are copied in parts (ComposeObject).
	maxCopy = 5 << 30
)

// Rename renames oldname to newname: S3 has no rename, so the objects are
// copied on the server and the originals deleted. A file replaces a file
// at newname; a folder may replace only an empty folder, and is copied
// object by object (at most maxRenameKeys of them, else ErrTooManyKeys), so
// other sessions may see both names for a moment, and a failure leaves the
// original in place. The error, an *os.LinkError, names both virtual paths.
func (f *Fs) Rename(oldname, newname string) error {
	oldV, newV := clean(oldname), clean(newname)
	if err := f.rename(oldV, newV); err != nil {
		return &os.LinkError{Op: "rename", Old: oldV, New: newV, Err: f.kind("rename", oldV, err)}
	}

	return nil
}

func (f *Fs) rename(oldV, newV string) error {
	if oldV == "/" || newV == "/" {
		return fs.ErrPermission
	}
	if err := f.refuse(oldV, false); err != nil {
		return err
	}
	if err := f.refuse(newV, true); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	info, etag, err := f.stat(ctx, oldV)
	switch {
	case err != nil:
		return err
	case oldV == newV:
		return nil
	}
	if err := f.parentDir(ctx, newV); err != nil {
		return err
	}
	if info.IsDir() {
		err = f.renameDir(ctx, oldV, newV)
	} else {
		err = f.renameFile(ctx, oldV, newV, info.Size(), etag)
	}
	if err != nil {
		return err
	}
	f.keepDir(ctx, path.Dir(oldV))

	return nil
}

// renameFile moves one object; a folder at newV is in the way.
func (f *Fs) renameFile(ctx context.Context, oldV, newV string, size int64, etag string) error {
	isDir, err := f.dirExists(ctx, newV)
	switch {
	case err != nil:
		return err
	case isDir:
		return syscall.EISDIR
	}
	if err := f.copyObject(ctx, f.key(oldV), f.key(newV), size, etag); err != nil {
		return err
	}

	return f.s.core.RemoveObject(ctx, f.s.bucket, f.key(oldV), minio.RemoveObjectOptions{})
}

// renameDir moves every object below oldV to the same name below newV, then
// deletes the originals.
func (f *Fs) renameDir(ctx context.Context, oldV, newV string) error {
	if strings.HasPrefix(newV, oldV+"/") {
		return syscall.EINVAL // into itself
	}
	oldPrefix, newPrefix := f.dirPrefix(oldV), f.dirPrefix(newV)
	target, _, err := f.stat(ctx, newV)
	switch {
	case err == nil && !target.IsDir():
		return syscall.ENOTDIR
	case err == nil:
		keys, err := f.firstKeys(ctx, newPrefix, 2)
		if err != nil {
			return err
		}
		if len(keys) > 1 || (len(keys) == 1 && keys[0] != newPrefix) {
			return syscall.ENOTEMPTY
		}
	case !notFound(err):
		return err
	}

	var objects []minio.ObjectInfo
	for oi := range f.s.core.ListObjectsIter(ctx, f.s.bucket, listOptions(oldPrefix, true, 0)) {
		if oi.Err != nil {
			return oi.Err
		}
		if len(objects) == maxRenameKeys {
			return ErrTooManyKeys
		}
		if len(oi.Key)-len(oldPrefix)+len(newPrefix) > maxKey {
			return ftpserver.ErrFileNameNotAllowed
		}
		objects = append(objects, oi)
	}
	if err := f.copyAll(ctx, objects, oldPrefix, newPrefix); err != nil {
		return err
	}
	keys := make([]string, len(objects))
	for i, oi := range objects {
		keys[i] = oi.Key
	}

	return f.removeKeys(ctx, keys)
}

// copyAll copies objects from below oldPrefix to the same names below
// newPrefix, copyWorkers at a time. If one copy fails, it removes the
// copies made and returns the error.
func (f *Fs) copyAll(ctx context.Context, objects []minio.ObjectInfo, oldPrefix, newPrefix string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		copied   []string
		work     = make(chan minio.ObjectInfo)
	)
	for range copyWorkers {
		wg.Go(func() {
			for oi := range work {
				dst := newPrefix + strings.TrimPrefix(oi.Key, oldPrefix)
				err := f.copyObject(ctx, oi.Key, dst, oi.Size, oi.ETag)
				mu.Lock()
				if err == nil {
					copied = append(copied, dst)
				} else if firstErr == nil {
					firstErr = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
feed:
	for _, oi := range objects {
		select {
		case work <- oi:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		cleanup, done := opContext()
		defer done()
		_ = f.removeKeys(cleanup, copied)

		return firstErr
	}

	return nil
}

// copyObject copies the object src, of the given size and ETag, to dst on
// the server; it fails with ErrChanged if src no longer has that ETag.
func (f *Fs) copyObject(ctx context.Context, src, dst string, size int64, etag string) error {
	from := minio.CopySrcOptions{Bucket: f.s.bucket, Object: src, MatchETag: quote(etag)}
	to := minio.CopyDestOptions{Bucket: f.s.bucket, Object: dst}
	var err error
	if size <= maxCopy {
		_, err = f.s.core.Client.CopyObject(ctx, to, from)
	} else {
		_, err = f.s.core.ComposeObject(ctx, to, from)
	}

	return err
}

// quote returns an ETag as the condition headers want it, in double quotes.
func quote(etag string) string {
	return `"` + strings.Trim(etag, `"`) + `"`
}
