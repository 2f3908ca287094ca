package server

import (
	"errors"
	"io/fs"

	ftpserver "github.com/fclairamb/ftpserverlib"
)

// Why wharf refused a command: the reason label of
// wharf_commands_refused_total. The set is fixed, so the series are few
// whatever clients send.
const (
	// refusedSyntax: 500 to 504, an unknown, malformed, unimplemented or
	// out-of-sequence command (RFC 959, 4.2.1: the x0z replies), and a
	// network protocol (522, RFC 2428) or protection level (536, RFC 2228)
	// wharf does not support.
	refusedSyntax = "syntax"
	// refusedNotLoggedIn: 530 to a command that needs a login first.
	refusedNotLoggedIn = "not_logged_in"
	// refusedTLSRequired: a login or a transfer that must use TLS (530 at
	// USER or PASS, 522 at a transfer), or a TLS data connection that did
	// not resume the control connection's session (522).
	refusedTLSRequired = "tls_required"
	// refusedPermission: what the account may not do (read-only,
	// write-only, a drop box, a name [listing] deny refuses), or what the
	// disk does not let wharf do (550, 553).
	refusedPermission = "permission"
	// refusedLimit: a size limit, a quota or a full disk (552), a drop-box
	// rate, or the memory for listings (450).
	refusedLimit = "limit"
)

var commandRefusals = []string{refusedSyntax, refusedNotLoggedIn, refusedTLSRequired, refusedPermission, refusedLimit}

// refusal is why a reply with code, to a command whose driver error was err
// (nil for none), refuses the command; "" when it refuses nothing: a
// success, a missing file, a broken data connection, or a wrong password
// (wharf_logins_total counts logins). Replies whose reason the code and the
// error can't tell are counted where wharf decides them (control.refuse).
func refusal(code int, err error) string {
	switch {
	case code < 400:
		return ""
	case code >= 500 && code <= 504:
		return refusedSyntax
	case err == nil:
		return ""
	case errors.Is(err, errNoSessionReuse):
		return refusedTLSRequired
	case errors.Is(err, fs.ErrPermission), errors.Is(err, ftpserver.ErrFileNameNotAllowed):
		return refusedPermission
	case errors.Is(err, ftpserver.ErrStorageExceeded), errors.Is(err, errListingMemory),
		errors.Is(err, errListingHuge), errors.Is(err, errListingsBusy):
		return refusedLimit
	}

	if _, ok := errors.AsType[*limitError](err); ok {
		return refusedLimit // a drop-box rate (450)
	}

	return ""
}

// countRefusal counts a refused command, unless reason is "".
func (m *metrics) countRefusal(reason string) {
	if reason != "" {
		m.refusedCommands.WithLabelValues(reason).Inc()
	}
}
