package server

import (
	"errors"
	"io/fs"
	"time"

	ftpserver "github.com/fclairamb/ftpserverlib"
	"go.uber.org/zap"

	"wharf/vfs"
)

// maxLoggedPath bounds the path a refusal's log line carries: it is the
// client's text (a command line holds up to 4 KiB).
const maxLoggedPath = 512

// refusalReason names the rule that refused a command failing with err, for
// the log: the account's access, the drop box, a name not allowed, the
// disk's permissions. It is "" for a failure that is no refusal (a missing
// file, a broken connection, a full disk) and for a drop-box limit, which
// logs its own line ("upload refused").
func refusalReason(err error) string {
	if _, ok := errors.AsType[*limitError](err); ok {
		return ""
	}

	switch {
	case errors.Is(err, vfs.ErrReadOnly):
		return "read-only"
	case errors.Is(err, vfs.ErrCreateOnly):
		return "create-only"
	case errors.Is(err, vfs.ErrWriteOnly):
		return "write-only"
	case errors.Is(err, vfs.ErrDropBox):
		return "drop box"
	case errors.Is(err, ftpserver.ErrFileNameNotAllowed):
		return "name not allowed"
	case errors.Is(err, errRestBeyondEnd):
		return "restart beyond the end"
	case errors.Is(err, fs.ErrPermission):
		return "permission"
	default:
		return ""
	}
}

// refusedReply logs, when the reply of code to cmd refuses it (see
// refusalReason), who was refused what. c.mu is held.
func (c *control) refusedReply(cmd *command, code int) {
	if cmd == nil || cmd.swallow || cmd.err == nil {
		return
	}

	reason := refusalReason(cmd.err)
	if reason == "" {
		return
	}

	verb, target := cmd.verb, cmd.arg
	if cmd.listing != "" {
		verb = cmd.listing // a listing the engine runs as a RETR
	}

	if pe, ok := errors.AsType[*fs.PathError](cmd.err); ok {
		target = pe.Path // the virtual path, made absolute
	}

	c.logRefusalLocked(verb, code, reason, zap.String("path", truncate(target, maxLoggedPath)))
}

// refused logs a command that wharf refuses itself, before the engine sees
// it: what names the command's object (its path, or a PORT's address).
func (c *control) refused(verb string, code int, reason string, what zap.Field) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.logRefusalLocked(verb, code, reason, what)
}

// logRefusalLocked logs one refused command at info level: the session (its
// id and the client's address), the user, the command, what it named, the
// reply code and the rule. A client can repeat a refused command at will, so
// a session logs at most logBurst of them per logWindow, then one line with
// the count (see logLimiter). c.mu is held.
func (c *control) logRefusalLocked(verb string, code int, reason string, what zap.Field) {
	if c.proto.refusals == nil {
		c.proto.refusals = newLogLimiter(logBurst, logWindow)
	}

	log := c.si.logger().with(zap.String("user", truncate(c.proto.account, 64)))
	summary := func(left int, since time.Time) {
		log.Info("more commands refused", zap.Int("commands", left),
			zap.Duration("duration", time.Since(since).Round(time.Millisecond)))
	}

	if c.proto.refusals.allow("refused", summary) {
		log.Info("command refused", zap.String("command", verb), what, zap.Int("code", code), zap.String("reason", reason))
	}
}

// endRefusals writes the count of refusals not logged yet, when the session ends.
func (c *control) endRefusals() {
	c.mu.Lock()
	l := c.proto.refusals
	c.mu.Unlock()

	if l != nil {
		l.stop()
	}
}
