package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"wharf/auth"
	"wharf/vfs"
)

var (
	errShuttingDown  = errors.New("server is shutting down, try again later")
	errRestBeyondEnd = errors.New("restart offset is beyond the end of the file")
	errIsDirectory   = errors.New("is a directory")
	errNotDirectory  = errors.New("not a directory")
	errMLSDFile      = errors.New("MLSD of a file")
)

// session is what AuthUser returns: the logged-in user's filesystem, plus the
// engine's optional driver extensions that need the account or the server.
type session struct {
	afero.Fs
	srv      *Server
	info     *sessionInfo
	account  auth.Account
	download *rate.Limiter // this session's own buckets; nil = unlimited
	upload   *rate.Limiter
	parts    *vfs.Fs      // the account's resumable uploads (see resume.go); nil where uploads do not resume
	listings ListingKeyer // the root's own names for its listings; nil on disk
	pins     *vfs.Pins    // the snapshot copies the session keeps; nil without snapshots
}

var (
	_ ftpserver.ClientDriver                      = (*session)(nil)
	_ ftpserver.ClientDriverExtentionFileTransfer = (*session)(nil)
	_ ftpserver.ClientDriverExtensionRemoveDir    = (*session)(nil)
	_ ftpserver.ClientDriverExtensionSite         = (*session)(nil)
)

// logger is the session's logger, with the user name.
func (s *session) logger() sessionLog {
	return s.info.logger().with(zap.String("user", s.account.Name))
}

// GetHandle opens a file for RETR (flags O_RDONLY), STOR or APPE. offset is
// the REST point: an upload may not restart beyond the end of the existing
// file, or of the account's part of it (REST 1000000000000 + STOR would
// otherwise make a sparse terabyte).
func (s *session) GetHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	t, err := s.getHandle(name, flags, offset)
	if err != nil {
		return nil, s.note(err)
	}

	return t, nil
}

func (s *session) getHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if s.srv.draining.Load() {
		return nil, errShuttingDown
	}

	if name == listingPath {
		if req := s.info.ctl.takeListing(); req != nil {
			return s.startListing(req)
		}
	}

	// STOU's name must not exist when the upload lands (O_EXCL: the upload
	// is committed with a link that fails if the name was taken meanwhile).
	if unique := s.info.ctl.unique(); unique != "" && name == unique {
		flags |= os.O_EXCL
	}

	write := flags&(os.O_WRONLY|os.O_RDWR) != 0
	if write && offset > 0 {
		end, err := s.restEnd(name)
		switch {
		case errors.Is(err, vfs.ErrWriteOnly):
			// Create-only: OpenFile refuses every resume alike (553),
			// whether the name exists or not.
		case err != nil:
			return nil, err
		case offset > end:
			return nil, &fs.PathError{Op: "rest", Path: name, Err: errRestBeyondEnd}
		}
	}

	f, err := s.OpenFile(name, flags, 0o644)
	if err != nil && flags&os.O_EXCL != 0 && (errors.Is(err, fs.ErrExist) || errors.Is(err, fs.ErrPermission)) {
		// STOU's name was taken meanwhile, or could not be seen (a drop box
		// hides its files): random letters make another.
		other := name + "." + rand.Text()[:10]
		if g, gerr := s.OpenFile(other, flags, 0o644); gerr == nil {
			f, err, name = g, nil, other
			s.info.ctl.setUnique(other)
		}
	}

	if err != nil {
		return nil, err
	}

	if write {
		if offset, err = continuePart(f, flags, offset); err != nil {
			_ = f.Close()

			return nil, err
		}
	}

	t := &transfer{
		file:        f,
		sess:        s,
		path:        name,
		direction:   "upload",
		start:       time.Now(),
		offset:      offset,
		dataTimeout: s.srv.opts.DataTimeout,
	}

	if write {
		t.fresh = flags&os.O_TRUNC != 0
		t.maxBytes = s.account.MaxUpload
		if t.maxBytes > 0 && offset > 0 {
			t.maxBytes -= offset // a resumed upload may complete the file, not exceed it
		}
		t.limiters = buckets(s.upload, s.srv.buckets.upload.Load())
		t.counted = s.srv.metrics.xfers[xferUpload].bytes
	} else {
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			_ = f.Close()

			return nil, &fs.PathError{Op: "open", Path: name, Err: errIsDirectory}
		}

		t.direction = "download"
		t.size = st.Size()
		t.limiters = buckets(s.download, s.srv.buckets.download.Load())
		t.counted = s.srv.metrics.xfers[xferDownload].bytes
	}

	t.progress.Store(t.start.UnixNano())
	s.info.transferStarted(t)

	return t, nil
}

// Stat reports on a file (CWD, SIZE, MDTM, RNFR).
func (s *session) Stat(name string) (os.FileInfo, error) {
	st, err := s.stat(name)

	return st, s.note(err)
}

func (s *session) stat(name string) (os.FileInfo, error) {
	return s.Fs.Stat(name) //nolint:wrapcheck // the client reads the vfs error (see describe)
}

// note records err for the reply to the command the engine runs: wharf
// writes that reply from the error itself (see control.fixReply).
func (s *session) note(err error) error {
	if err != nil {
		s.info.ctl.noteErr(err)
	}

	return err
}

// uniqueName picks a name for STOU in folder dir that no file has: base
// itself, or base with a number added; with no base, "wharf-" and random
// letters. Where names cannot be looked at (a drop box hides its files), base
// gets random letters added instead. Either way the upload fails rather than
// replace a file that takes the name meanwhile (O_EXCL, see getHandle).
func (s *session) uniqueName(dir, base string) (string, error) {
	if strings.ContainsAny(base, "/\x00") || base == "." || base == ".." {
		return "", &fs.PathError{Op: "stou", Path: path.Join(dir, base), Err: ftpserver.ErrFileNameNotAllowed}
	}

	if base == "" {
		return "wharf-" + rand.Text()[:10], nil
	}

	for i := range 100 {
		name := base
		if i > 0 {
			name = base + "." + strconv.Itoa(i)
		}

		switch _, err := s.stat(path.Join(dir, name)); {
		case errors.Is(err, fs.ErrNotExist):
			return name, nil
		case err != nil:
			// The name cannot be looked at: random letters make one nobody has.
			return base + "." + rand.Text()[:10], nil //nolint:nilerr // the error only says the name is hidden
		}
	}

	return "", &fs.PathError{Op: "stou", Path: path.Join(dir, base), Err: fs.ErrExist}
}

// changed forgets the cached listing of the folder holding name, after
// a change made through this session.
func (s *session) changed(name string) {
	if !path.IsAbs(name) {
		name = path.Join(s.info.cc.Path(), name)
	}

	s.srv.dirs.forget(s.dirKey(path.Dir(path.Clean(name))))
}

// Mkdir creates a folder (MKD).
func (s *session) Mkdir(name string, perm os.FileMode) error {
	defer s.changed(name)

	return s.note(s.Fs.Mkdir(name, perm))
}

// Rename moves a file or folder (RNFR, RNTO).
func (s *session) Rename(oldname, newname string) error {
	defer s.changed(oldname)
	defer s.changed(newname)

	return s.note(s.Fs.Rename(oldname, newname))
}

// Chmod changes permission bits (SITE CHMOD), which listings show.
func (s *session) Chmod(name string, mode os.FileMode) error {
	defer s.changed(name)

	return s.note(s.Fs.Chmod(name, mode))
}

// Chtimes changes a modification time (MFMT), which listings show.
func (s *session) Chtimes(name string, atime, mtime time.Time) error {
	defer s.changed(name)

	return s.note(s.Fs.Chtimes(name, atime, mtime))
}

// Remove deletes a file (DELE). Directories are removed with RMD.
func (s *session) Remove(name string) error {
	st, err := s.stat(name)
	if err != nil {
		return s.note(err)
	}

	if st.IsDir() {
		return s.note(&fs.PathError{Op: "remove", Path: name, Err: errIsDirectory})
	}

	defer s.changed(name)

	return s.note(s.Fs.Remove(name))
}

// RemoveDir deletes an empty directory (RMD).
func (s *session) RemoveDir(name string) error {
	st, err := s.stat(name)
	if err != nil {
		return s.note(err)
	}

	if !st.IsDir() {
		return s.note(&fs.PathError{Op: "rmdir", Path: name, Err: errNotDirectory})
	}

	defer s.changed(name)

	return s.note(s.Fs.Remove(name))
}

// Site answers every SITE command itself, so the engine's own handlers
// (whose CHMOD panics on a missing argument) are never reached. Only
// CHMOD is offered.
func (s *session) Site(param string) *ftpserver.AnswerCommand {
	cmd, args, _ := strings.Cut(param, " ")

	switch strings.ToUpper(cmd) {
	case "CHMOD":
		return s.siteChmod(args)
	case "HELP":
		return &ftpserver.AnswerCommand{Code: ftpserver.StatusHelpMessage, Message: "SITE commands: CHMOD <mode> <path>"}
	default:
		return &ftpserver.AnswerCommand{
			Code:    ftpserver.StatusCommandNotImplemented,
			Message: fmt.Sprintf("SITE %s is not supported", strings.ToUpper(cmd)),
		}
	}
}

func (s *session) siteChmod(args string) *ftpserver.AnswerCommand {
	modeText, name, ok := strings.Cut(strings.TrimSpace(args), " ")
	if !ok || name == "" {
		return &ftpserver.AnswerCommand{Code: ftpserver.StatusSyntaxErrorParameters, Message: "usage: SITE CHMOD <octal mode> <path>"}
	}

	mode, err := strconv.ParseUint(modeText, 8, 32)
	if err != nil || mode > 0o777 {
		return &ftpserver.AnswerCommand{Code: ftpserver.StatusSyntaxErrorParameters, Message: "SITE CHMOD: mode must be octal, 0 to 777"}
	}

	if err := s.Chmod(name, os.FileMode(mode)); err != nil {
		return &ftpserver.AnswerCommand{Code: ftpserver.StatusActionNotTaken, Message: "SITE CHMOD refused: " + describe(err)}
	}

	return &ftpserver.AnswerCommand{Code: ftpserver.StatusOK, Message: "SITE CHMOD command successful"}
}
