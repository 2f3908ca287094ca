package server

import (
	"os"
	"strconv"

	"github.com/spf13/afero"

	"wharf/auth"
	"wharf/vfs"
)

// Resumable uploads: an account's upload that is interrupted (a reset or
// stalled data connection, ABOR, a lost control connection) keeps its hidden
// part for upload_resume_window after its last byte (vfs.Fs.Resume). For
// that account only, SIZE reports the part's size, and REST n then STOR, or
// APPE, continue it and commit it atomically when they complete; REST n
// below the part's size cuts it at n, beyond it is refused as beyond the end
// of a file. A fresh STOR replaces the part. While one upload writes a part,
// another upload of the same account to that name is refused with 450.
//
// Uploads do not resume for anonymous sessions, read-only accounts,
// create-only accounts (write-only without overwrite: they may not resume
// anything, vfs.WriteOnly), with upload_resume_window = 0, in direct mode (upload_mode = "direct": an
// upload is written in place, so REST and APPE already continue it), or on
// an object store, whose multipart upload ends with its session.

// resumeView returns the session's filesystem on disk with resumable
// uploads for acct, or nil where its uploads do not resume.
func (s *Server) resumeView(acct auth.Account, root Root) *vfs.Fs {
	disk, onDisk := root.(*vfs.Fs)
	switch {
	case !onDisk, acct.Anonymous, !s.opts.AtomicUploads, s.opts.UploadResumeWindow <= 0:
		return nil
	case acct.Access == auth.ReadOnly, acct.Access == auth.WriteOnly && !acct.Overwrite:
		return nil
	}

	return disk.Resume(acct.Name, s.opts.UploadResumeWindow)
}

// size answers SIZE (RFC 3659, 4). While the account has a part of the
// name, SIZE is the part's size, whether or not a file of that name exists:
// the part is what the client's next REST or APPE continues (curl -C -
// sends SIZE, then APPE; lftp's put -c, SIZE then REST and STOR). Otherwise
// the engine answers.
func (c *control) size(verb, arg string) {
	if n, ok := c.partSize(arg); ok {
		c.answer(213, strconv.FormatInt(n, 10))

		return
	}

	c.forward(&command{verb: verb, arg: arg, kind: cmdSync})
}

// partSize is the size of the account's part of the upload to arg, if it
// has one. In TYPE A with conversion on, the engine refuses SIZE: so does
// this.
func (c *control) partSize(arg string) (int64, bool) {
	if c.proto.ascii && c.srv.opts.ASCIIConversion {
		return 0, false
	}

	sess := c.si.drv()
	if sess == nil || sess.parts == nil {
		return 0, false
	}

	info, err := sess.parts.Part(c.abs(arg))
	if err != nil {
		return 0, false
	}

	return info.Size(), true
}

// restEnd is the offset a REST before STOR may not pass: the size of the
// account's part of name if it has one, else the size of the file.
func (s *session) restEnd(name string) (int64, error) {
	if s.parts != nil {
		if info, err := s.parts.Part(name); err == nil {
			return info.Size(), nil
		}
	}

	st, err := s.stat(name)
	if err != nil {
		return 0, err
	}

	return st.Size(), nil
}

// continuePart prepares an upload file f that may continue a kept part,
// and returns the offset at which the upload starts: for APPE, the part's
// end; for REST n, n, the part cut there if it was longer (what followed n
// is not what the client sends now).
func continuePart(f afero.File, flags int, offset int64) (int64, error) {
	from, resumed := vfs.Resumed(f)

	switch {
	case !resumed:
		return offset, nil
	case flags&os.O_APPEND != 0:
		return from, nil
	case offset < from:
		return offset, f.Truncate(offset) //nolint:wrapcheck // the client reads the vfs error (see describe)
	default:
		return offset, nil
	}
}
