package server

import (
	"errors"
	"io/fs"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	ftpserver "github.com/fclairamb/ftpserverlib"

	"wharf/vfs"
)

// fixReply corrects the engine's reply to cmd, given its first line: it
// returns what wharf sends instead (possibly nothing), or false to pass the
// engine's reply on unchanged. The engine composes replies from its own
// wrappers around a driver error ("Could not access file: driver error:
// calling GetHandle: ..."); wharf writes them from the error itself, which
// the session noted on the command (notedErr), so no reply carries an
// engine prefix, a Go error string or a disk path.
func (c *control) fixReply(to *command, code int, line []byte) (reply, bool) {
	if to != nil && code == to.prepares && (code == 227 || code == 229) {
		c.srv.pasv.claim(line, c.gc.ip) // the port announced is this session's
	}

	switch {
	case to == nil:
		// The greeting. A session refused in ClientConnected gets the
		// engine's 500: 421 is the code for "service not available".
		if code == 500 {
			return reply{421, string(line)}, true
		}

		return reply{}, false
	case to.swallow:
		return reply{}, true // code 0: nothing goes out
	case to.fix != nil:
		if fixed, fixedText := to.fix(code); fixed != 0 {
			return reply{fixed, fixedText}, true
		}
	}

	if code < 400 {
		return reply{}, false
	}

	// A drop-box limit (dropbox.go) carries its own code and words, whatever
	// the engine made of it: 550 for MKD or a refused STOR, "Issue during
	// transfer" for a cut upload.
	if le, ok := errors.AsType[*limitError](to.err); ok {
		return reply{le.code, le.text}, true
	}

	text := string(line)

	switch {
	case code == 500 && strings.HasPrefix(text, "Unhandled internal error"):
		// A panic the engine recovered: its text is the panic's.
		return reply{451, "Internal error: the action was not taken."}, true
	case to.kind == cmdTransfer:
		return c.fixTransfer(to, code, text)
	case to.err != nil:
		return reply{storageCode(to.err, code), describe(to.err)}, true
	}

	return reply{}, false
}

// reply is a reply wharf writes instead of the engine's; code 0 is none.
type reply struct {
	code int
	text string
}

// fixTransfer corrects the final reply of RETR, STOR, APPE or a listing
// (RFC 959, 4.2 and 5.4): 425 when no data connection was prepared or it could
// not be opened, 426 when the data connection broke, 451 for a local error,
// 552 for a full disk or a size limit.
func (c *control) fixTransfer(to *command, code int, text string) (reply, bool) {
	listing := c.listingCode(to)

	switch {
	case strings.HasPrefix(text, "unable to open transfer: no transfer connection"):
		return reply{425, "No data connection: send PASV, EPSV, PORT or EPRT first."}, true
	case code == 425:
		return reply{425, "Cannot open the data connection."}, true
	case strings.HasPrefix(text, "Issue during transfer close"):
		return reply{426, "Connection closed; transfer aborted: the data connection did not close cleanly."}, true
	case strings.HasPrefix(text, "Issue during transfer"):
		var dce *dataConnError
		switch err := to.err; {
		case errors.Is(err, errNoSessionReuse):
			return reply{522, "Data connection refused: it must resume the control connection's TLS session (tell your client to reuse TLS sessions)."}, true
		case errors.As(err, &dce):
			return reply{426, "Connection closed; transfer aborted: " + dce.Error() + "."}, true
		case errors.Is(err, ftpserver.ErrStorageExceeded):
			return reply{552, describe(err)}, true
		case err != nil:
			return reply{451, "Local error, transfer aborted: " + describe(err)}, true
		default:
			return reply{451, "Transfer aborted."}, true
		}
	case to.err == nil || !strings.HasPrefix(text, "Could not"):
		// Not the driver's refusal: the engine's own 426 for ABOR, for one.
		return reply{}, false
	case errors.Is(to.err, errMLSDFile):
		return reply{501, describe(to.err)}, true // RFC 3659, 7
	case listing != 0 && (errors.Is(to.err, errListingMemory) || errors.Is(to.err, errListingsBusy)):
		return reply{450, describe(to.err)}, true // busy: try again later, MLSD too
	case errors.Is(to.err, vfs.ErrUploadBusy):
		return reply{450, describe(to.err)}, true // RFC 959, 4.2: file busy, try again
	case storageCode(to.err, 0) != 0:
		return reply{storageCode(to.err, 0), describe(to.err)}, true // nothing moved: 450, or 451
	case listing != 0:
		return reply{listing, describe(to.err)}, true
	default:
		// "Could not access file" (the file was refused), "Could not seek file".
		return reply{code, describe(to.err)}, true
	}
}

// storageCode is the code of the reply to a command that failed with err
// before anything was done: 450 when the storage is unavailable for now
// (RFC 959, 4.2: not taken, try again later), 451 when it failed in a way
// the operator must fix (local error in processing); else code. A transfer
// cut by either is 451 (fixTransfer).
func storageCode(err error, code int) int {
	switch {
	case errors.Is(err, vfs.ErrUnavailable):
		return 450
	case errors.Is(err, vfs.ErrStorageFault):
		return 451
	}

	return code
}

// listingCode is the code of a failed listing: 450 for LIST and NLST (RFC
// 959, 5.4), 550 for MLSD (RFC 3659, 7.2), 0 for other transfers.
func (c *control) listingCode(to *command) int {
	switch to.listing {
	case "LIST", "NLST":
		return 450
	case "MLSD":
		return 550
	}

	return 0
}

// noteErr records a driver error on the command the engine runs, for its reply.
func (c *control) noteErr(err error) {
	if err == nil {
		return
	}

	c.mu.Lock()
	defer c.mu.Unlock()

	to := c.cur
	if c.xfer != nil {
		to = c.xfer
	}

	if to != nil && to.err == nil {
		to.err = err
	}
}

// describe is an error as a client reads it: "/pub/a.iso: No such file or
// folder.", with the virtual path and the cause in words.
func describe(err error) string {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Path + ": " + sentence(reason(pe.Err))
	}

	return sentence(reason(err))
}

// reason names an error's cause.
func reason(err error) string {
	var errno syscall.Errno

	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such file or folder"
	case errors.Is(err, fs.ErrExist):
		return "already exists"
	case errors.Is(err, errIsDirectory):
		return "is a folder"
	case errors.Is(err, errNotDirectory):
		return "not a folder"
	case errors.Is(err, errMLSDFile):
		return "not a folder: MLSD lists folders, MLST describes a file"
	case errors.Is(err, syscall.ENOTEMPTY):
		return "folder not empty"
	case errors.As(err, &errno):
		return errno.Error()
	}

	return err.Error()
}

// sentence capitalises text and ends it with a full stop.
func sentence(text string) string {
	r, n := utf8.DecodeRuneInString(text)
	text = string(unicode.ToUpper(r)) + text[n:]

	if !strings.HasSuffix(text, ".") {
		text += "."
	}

	return text
}
