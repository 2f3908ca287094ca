package vfs

import (
	"errors"
	"io"
	"io/fs"
	"math"
	"syscall"
)

// An upload's data reaches the disk before Close returns, so that the 226
// the engine sends after Close means the file survives a crash: Close syncs
// the file's data (fdatasync(2) on Linux), and after an atomic upload's
// rename, or an in-place upload that created its file, the folder that
// holds the name. Options.NoSync turns both off.
//
// Written all at once at the end, a big upload would make its client wait
// for the whole file to go to disk after the last byte arrived (a 1 GiB
// upload: over a second on a disk that writes 700 MB/s). So while the data
// arrives, every writebackStep bytes the kernel is asked to start writing
// what just came and to finish what came earlier (writeback; Linux's
// sync_file_range(2), nothing elsewhere), and the final sync finds at most
// three steps left. That also bounds the dirty memory an upload holds.

// writebackStep is how many bytes an upload writes between two pushes of
// its write-back: big enough that the disk always has a step queued while
// the next one arrives, small enough that the final sync is short.
const writebackStep = 16 << 20

// wrote notes n bytes written at the file's offset and, every
// writebackStep, pushes the write-back. Its error is the write-back's (an
// I/O error or a full disk the kernel met writing earlier data), which
// fails the upload.
func (f *file) wrote(n int) error {
	if n <= 0 {
		return nil
	}

	f.dirty = true
	if !f.progressive() {
		return nil
	}

	f.wb.pending += int64(n)
	if f.wb.pending < writebackStep {
		return nil
	}

	f.wb.pending = 0
	if err := f.wb.push(f.File); err != nil {
		return &fs.PathError{Op: "write", Path: f.name, Err: err}
	}
	if !f.wb.off {
		f.fs.synced("writeback")
	}

	return nil
}

// progressive reports whether f pushes its write-back as it is written.
func (f *file) progressive() bool {
	return writebackWorks && f.fs != nil && !f.fs.noSync && !f.wb.off
}

// readFromInSteps is ReadFrom for a file that pushes its write-back: it
// reads r in pieces that end where a step does. A piece of a data
// connection is still spliced: when r is an *io.LimitedReader (as the
// server's transfer loop hands it), each piece limits r's own reader, which
// (*os.File).ReadFrom recognises, and r's N goes down as it would have.
func (f *file) readFromInSteps(r io.Reader) (int64, error) {
	src, limit := r, int64(math.MaxInt64)
	lr, limited := r.(*io.LimitedReader)
	if limited {
		src, limit = lr.R, lr.N
	}

	var total int64
	for limit > 0 {
		want := min(limit, writebackStep-f.wb.pending)
		n, err := f.File.ReadFrom(&io.LimitedReader{R: src, N: want})
		total += n
		limit -= n
		if limited {
			lr.N = limit
		}
		if wbErr := f.wrote(int(n)); err == nil {
			err = wbErr
		}
		if err != nil || n < want {
			return total, err
		}
	}

	return total, nil
}

// sync makes what was written to f durable, unless the Fs says not to.
func (f *file) sync() error {
	if f.fs == nil || f.fs.noSync || !f.dirty {
		return nil
	}

	if err := syncData(f.File); err != nil {
		return f.err(&fs.PathError{Op: "sync", Path: f.name, Err: err})
	}

	f.fs.synced("data")

	return nil
}

// syncFolder makes the names in the folder rel (an os.Root name) durable:
// a rename or a new file in it survives a crash. An error is the folder's,
// with no path.
func (f *Fs) syncFolder(rel string) error {
	if f.noSync || !folderSync {
		return nil
	}

	d, err := f.root.Open(rel)
	if err != nil {
		return err
	}
	defer d.Close()

	// A file system that can't sync a folder (EINVAL) keeps its names
	// some other way, or not at all: nothing to wait for.
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}

	f.synced("folder")

	return nil
}

// synced tells the test hook, if any, of a sync: "data", "folder" or
// "writeback" (a push).
func (f *Fs) synced(what string) {
	if f.onSync != nil {
		f.onSync(what)
	}
}

// writeback is a file's progressive write-back, pushed every writebackStep
// bytes (see wrote): start writing the step that arrived since the last
// push, then wait until the step before the previous one is written. The
// disk then always has a step or two queued while the next arrives, and at
// most three steps of an upload are dirty or being written at any time.
// Waiting for the step just before (one queued) measured slower on a
// virtual disk; not waiting at all, no faster than waiting two steps back.
type writeback struct {
	pending int64    // bytes written since the last push
	ends    [2]int64 // where the last two pushes' steps ended, the last first
	waited  int64    // the data before this offset is on disk
	off     bool     // the file system refused: the final sync does it all
}
