package server

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"github.com/spf13/afero"
	"go.uber.org/zap"

	"wharf/auth"
	"wharf/vfs"
)

var (
	errShuttingDown  = errors.New("server is shutting down, try again later")
	errRestBeyondEnd = errors.New("restart offset is beyond the end of the file")
	errIsDirectory   = errors.New("is a directory")
	errNotDirectory  = errors.New("not a directory")
)

// session is what AuthUser returns: the logged-in user's filesystem, plus the
// engine's optional driver extensions that need the account or the server.
type session struct {
	afero.Fs
	srv     *Server
	info    *sessionInfo
	account auth.Account
	log     *zap.Logger
}

var (
	_ ftpserver.ClientDriver                      = (*session)(nil)
	_ ftpserver.ClientDriverExtentionFileTransfer = (*session)(nil)
	_ ftpserver.ClientDriverExtensionRemoveDir    = (*session)(nil)
	_ ftpserver.ClientDriverExtensionSite         = (*session)(nil)
)

// GetHandle opens a file for RETR (flags O_RDONLY), STOR or APPE. offset is
// the REST point: an upload may not restart beyond the end of the existing
// file (REST 1000000000000 + STOR would otherwise make a sparse terabyte).
func (s *session) GetHandle(name string, flags int, offset int64) (ftpserver.FileTransfer, error) {
	if s.srv.draining.Load() {
		return nil, errShuttingDown
	}

	write := flags&(os.O_WRONLY|os.O_RDWR) != 0
	if write && offset > 0 {
		st, err := s.Stat(name)
		if err != nil {
			return nil, err
		}

		if offset > st.Size() {
			return nil, &fs.PathError{Op: "rest", Path: name, Err: errRestBeyondEnd}
		}
	}

	f, err := s.OpenFile(name, flags, 0o644)
	if err != nil {
		return nil, err
	}

	if !write {
		st, err := f.Stat()
		if err != nil || st.IsDir() {
			_ = f.Close()

			return nil, &fs.PathError{Op: "open", Path: name, Err: errIsDirectory}
		}
	}

	direction := "download"
	if write {
		direction = "upload"
	}

	s.info.transfers.Add(1)

	return &transfer{
		file:      f,
		sess:      s,
		path:      name,
		direction: direction,
		start:     time.Now(),
		offset:    offset,
	}, nil
}

// Stat reports on a file. The engine answers RNFR with a Stat alone, so a
// session that may not rename is refused here, at RNFR, rather than at RNTO.
func (s *session) Stat(name string) (os.FileInfo, error) {
	if s.account.Access != auth.ReadWrite && s.info.cc.GetLastCommand() == "RNFR" {
		reason := vfs.ErrReadOnly
		if s.account.Access == auth.WriteOnly {
			reason = vfs.ErrWriteOnly
		}

		return nil, &fs.PathError{Op: "rename", Path: name, Err: reason}
	}

	return s.Fs.Stat(name)
}

// Remove deletes a file (DELE). Directories are removed with RMD.
func (s *session) Remove(name string) error {
	st, err := s.Stat(name)
	if err != nil {
		return err
	}

	if st.IsDir() {
		return &fs.PathError{Op: "remove", Path: name, Err: errIsDirectory}
	}

	return s.Fs.Remove(name)
}

// RemoveDir deletes an empty directory (RMD).
func (s *session) RemoveDir(name string) error {
	st, err := s.Stat(name)
	if err != nil {
		return err
	}

	if !st.IsDir() {
		return &fs.PathError{Op: "rmdir", Path: name, Err: errNotDirectory}
	}

	return s.Fs.Remove(name)
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
		return &ftpserver.AnswerCommand{Code: ftpserver.StatusActionNotTaken, Message: "SITE CHMOD refused: " + err.Error()}
	}

	return &ftpserver.AnswerCommand{Code: ftpserver.StatusOK, Message: "SITE CHMOD command successful"}
}

// transfer wraps the file of one RETR, STOR or APPE to count its bytes and
// log its outcome. It keeps the kernel's fast paths: WriteTo hands the
// *os.File itself to the connection's ReadFrom (sendfile for downloads), and
// ReadFrom hands the connection to the file's own ReadFrom (uploads).
type transfer struct {
	file      afero.File
	sess      *session
	path      string
	direction string
	start     time.Time
	offset    int64

	bytes  atomic.Int64
	failed atomic.Pointer[error]
	closed atomic.Bool
}

var (
	_ ftpserver.FileTransfer      = (*transfer)(nil)
	_ ftpserver.FileTransferError = (*transfer)(nil)
	_ io.WriterTo                 = (*transfer)(nil)
	_ io.ReaderFrom               = (*transfer)(nil)
)

func (t *transfer) Read(p []byte) (int, error) {
	n, err := t.file.Read(p)
	t.bytes.Add(int64(n))

	return n, err
}

func (t *transfer) Write(p []byte) (int, error) {
	n, err := t.file.Write(p)
	t.bytes.Add(int64(n))

	return n, err
}

func (t *transfer) Seek(offset int64, whence int) (int64, error) {
	return t.file.Seek(offset, whence)
}

// WriteTo sends the file to w; with a plain TCP data connection and an
// *os.File this is one sendfile(2) loop in the kernel.
func (t *transfer) WriteTo(w io.Writer) (int64, error) {
	var (
		n   int64
		err error
	)

	if rf, ok := w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(t.file)
	} else {
		n, err = io.Copy(w, onlyReader{t.file})
	}

	t.bytes.Add(n)

	return n, err
}

// ReadFrom receives from r into the file, through the file's own ReadFrom
// when it has one (splice on Linux).
func (t *transfer) ReadFrom(r io.Reader) (int64, error) {
	var (
		n   int64
		err error
	)

	if rf, ok := t.file.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(onlyWriter{t.file}, r)
	}

	t.bytes.Add(n)

	return n, err
}

// TransferError records why the transfer did not complete and tells the file
// (an atomic upload then discards its temporary file).
func (t *transfer) TransferError(err error) {
	t.failed.CompareAndSwap(nil, &err)

	if te, ok := t.file.(ftpserver.FileTransferError); ok {
		te.TransferError(err)
	}
}

func (t *transfer) Close() error {
	if !t.closed.CompareAndSwap(false, true) {
		return nil
	}

	err := t.file.Close()
	if err != nil {
		t.failed.CompareAndSwap(nil, &err)
	}

	t.sess.info.transfers.Add(-1)
	t.sess.srv.transferDone(t)

	return err
}

// failure returns why the transfer failed, or nil if it completed.
func (t *transfer) failure() error {
	if p := t.failed.Load(); p != nil {
		return *p
	}

	return nil
}

// onlyReader and onlyWriter hide every method but Read or Write, so io.Copy
// cannot loop back into transfer's own WriteTo or ReadFrom.
type onlyReader struct{ io.Reader }

type onlyWriter struct{ io.Writer }
