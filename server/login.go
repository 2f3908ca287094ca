package server

import (
	"errors"
	"io"
	"os"
	"path"
	"time"

	"go.uber.org/zap"

	"wharf/auth"
	"wharf/vfs"
)

// maxLoginFailures is how many wrong passwords one connection may send; the
// last one closes it (vsftpd's max_login_fails). Each failure also counts
// toward the address's ban.
const maxLoginFailures = 3

var (
	// errLoginTLS refuses a login that must come over TLS.
	errLoginTLS = errors.New("login needs TLS")
	// errLoginBanned refuses every login from a banned address.
	errLoginBanned = errors.New("address banned")
	// errHomeUnavailable refuses a login whose password was right but whose
	// home folder can't be opened: a fault of the server, not of the client.
	errHomeUnavailable = errors.New("home folder unavailable")
)

// user answers USER. A name that must log in over TLS is refused here, on a
// clear connection, with a reply that says why (the client may AUTH TLS and
// try again); the password is only asked for otherwise.
func (c *control) user(_, arg string) {
	name := arg
	c.proto.user = ""

	switch {
	case c.si.loggedIn():
		c.answer(530, "Already logged in: open a new connection to log in as another user.")
	case name == "":
		c.answer(501, "Syntax: USER <name>")
	case !c.isSecure() && c.srv.opts.TLSMode == TLSRequired:
		c.refuseUser(name, "TLS is required on this server: send AUTH TLS, then log in.")
	case !c.isSecure() && c.srv.opts.TLSMode == TLSExplicit && c.srv.accounts.Load().NeedsTLS(name):
		c.refuseUser(name, "This account logs in over TLS only: use AUTH TLS.")
	case auth.IsAnonymousName(name):
		c.proto.user = name
		c.answer(331, "Anonymous login: send your e-mail address as password.")
	default:
		c.proto.user = name
		c.answer(331, "Please specify the password.")
	}
}

func (c *control) refuseUser(name, why string) {
	c.si.logger().Warn("login refused", zap.String("user", truncate(name, 64)), zap.String("reason", "no TLS on the control connection"))
	c.srv.metrics.logins.WithLabelValues("refused").Inc()
	c.refuse(refusedTLSRequired, 530, why)
}

// pass checks the password itself, before the engine sees PASS: the engine
// closes the connection on a wrong password and answers PASS without USER
// 530. A wrong password gets 530 and the client may try again, up to
// maxLoginFailures. A good one goes to the engine, whose AuthUser takes the
// login checked here.
func (c *control) pass(_, arg string) {
	switch {
	case c.si.loggedIn():
		c.answer(503, "Already logged in.")

		return
	case c.proto.user == "":
		c.answer(503, "Log in with USER first.")

		return
	}

	name := c.proto.user
	c.proto.user = ""

	if !auth.IsAnonymousName(name) {
		c.flush() // a password check takes a while: send what waits first
	}

	ok, err := c.si.login(name, arg, c.isSecure())

	switch {
	case err == nil:
		c.si.setLogin(ok)
		c.forward(&command{verb: "PASS", arg: "-", after: func(code int) {
			if code == 230 {
				c.proto.needTLS = ok.acct.NeedsTLS && c.srv.opts.TLSMode != TLSOff
				c.proto.account = ok.acct.Name
			}
		}})
	case errors.Is(err, auth.ErrBusy):
		c.closeAfter(421, sentence(auth.ErrBusy.Error()))
	case errors.Is(err, errLoginBanned):
		c.closeAfter(421, "Too many failed logins from your address: try again later.")
	case errors.Is(err, errLoginTLS):
		c.refuse(refusedTLSRequired, 530, "This account logs in over TLS only: use AUTH TLS.")
	case errors.Is(err, errHomeUnavailable):
		// Not 530: the password was right, and trying another would not help.
		c.closeAfter(421, "Service not available: home folder unavailable")
	default:
		c.proto.failures++
		if c.proto.failures >= maxLoginFailures {
			c.si.logger().Warn("too many failed logins, closing", zap.Int("failures", c.proto.failures))
			c.closeAfter(530, "Login incorrect.")

			return
		}

		c.answer(530, "Login incorrect.")
	}
}

// closeAfter answers, then ends the session.
func (c *control) closeAfter(code int, text string) {
	c.answer(code, text)
	c.flush()
	c.readErr = io.EOF // the engine ends the session quietly
	_ = c.Close()
}

// verifiedLogin is a login wharf checked, waiting for the engine's AuthUser.
type verifiedLogin struct {
	acct    auth.Account
	root    Root
	release func() error
}

// loginAttempt is one PASS going through the steps of login.
type loginAttempt struct {
	si     *sessionInfo
	user   string
	pass   string
	secure bool
	ip     string // the client's address
	key    string // and as per-address limits count it (addrKey)

	releaseSlot func()
	acct        auth.Account
	root        Root
	release     func() error
}

// loginSteps are the checks of a login, in order. Each returns nil to go on,
// or the error that refuses the login.
var loginSteps = []struct {
	name string
	run  func(*loginAttempt) error
}{
	{"tls", (*loginAttempt).checkTLS},
	{"address slot", (*loginAttempt).takeSlot},
	{"ban", (*loginAttempt).checkBan},
	{"account turn", (*loginAttempt).waitTurn},
	{"password", (*loginAttempt).checkPassword},
	{"home", (*loginAttempt).openHome},
}

// login runs the steps for user and pass.
func (si *sessionInfo) login(user, pass string, secure bool) (*verifiedLogin, error) {
	a := &loginAttempt{si: si, user: user, pass: pass, secure: secure, ip: si.ip(), key: si.key()}
	defer func() {
		if a.releaseSlot != nil {
			a.releaseSlot()
		}
	}()

	for _, step := range loginSteps {
		if err := step.run(a); err != nil {
			return nil, err
		}
	}

	return &verifiedLogin{acct: a.acct, root: a.root, release: a.release}, nil
}

// log is the session's log with the user name; made only when a step logs.
func (a *loginAttempt) log() sessionLog {
	return a.si.logger().with(zap.String("user", truncate(a.user, 64)))
}

// checkTLS refuses an account that must log in over TLS on a clear
// connection; USER refused it already, this holds if USER was skipped.
func (a *loginAttempt) checkTLS() error {
	s := a.si.srv
	need := s.opts.TLSMode == TLSRequired ||
		(s.opts.TLSMode == TLSExplicit && s.accounts.Load().NeedsTLS(a.user))
	if need && !a.secure {
		a.log().Warn("login refused", zap.String("reason", "no TLS on the control connection"))
		s.metrics.logins.WithLabelValues("refused").Inc()

		return errLoginTLS
	}

	return nil
}

// takeSlot lets one password check per address (per key: an IPv6 client
// by its prefix) run at a time (see loginSlots). Anonymous logins check no
// password.
func (a *loginAttempt) takeSlot() error {
	if auth.IsAnonymousName(a.user) {
		return nil
	}

	release, ok := a.si.srv.logins.acquire(a.key)
	if !ok {
		a.log().Warn("login refused", zap.String("reason", "too many logins from this address at once"))
		a.si.srv.metrics.logins.WithLabelValues("refused").Inc()

		return auth.ErrBusy
	}

	a.releaseSlot = release

	return nil
}

// checkBan refuses a connection opened before its address was banned: it
// gets no more bcrypt checks.
func (a *loginAttempt) checkBan() error {
	if a.si.srv.bans.isBanned(a.ip, a.key) {
		a.log().Warn("login refused", zap.String("reason", "address banned"))
		a.si.srv.metrics.logins.WithLabelValues("refused").Inc()

		return errLoginBanned
	}

	return nil
}

// waitTurn waits for the account's turn to check a password (see
// accountThrottle), for as long as the login may still take, less
// checkRoom: a turn later than that would end in login_timeout closing the
// session while its password is checked. A login whose turn is further away
// is refused with ErrBusy (421) and checks nothing; one whose turn is now is
// checked whatever time it has left. Anonymous logins check no password.
func (a *loginAttempt) waitTurn() error {
	if auth.IsAnonymousName(a.user) {
		return nil
	}

	s := a.si.srv
	limit := maxAccountWait
	if lt := s.opts.LoginTimeout; lt > 0 {
		limit = min(limit, max(0, lt-time.Since(a.si.since)-checkRoom))
	}

	wait, ok := s.throttle.reserve(a.user, a.key, limit)
	if !ok {
		s.metrics.logins.WithLabelValues("refused").Inc()
		summary := func(left int, since time.Time) {
			s.log.Warn("more logins refused", zap.String("reason", "account throttled"), zap.Int("logins", left),
				zap.Duration("duration", time.Since(since).Round(time.Millisecond)))
		}
		if s.floodLogs.allow("account throttled", summary) {
			a.log().Warn("login refused", zap.String("reason", "account throttled"),
				zap.Duration("wait", wait.Round(time.Millisecond)))
		}

		return auth.ErrBusy
	}

	if wait <= 0 {
		return nil
	}

	timer := time.NewTimer(wait)
	defer timer.Stop()

	select {
	case <-timer.C:
		return nil
	case <-a.si.ctl.gc.done:
		return auth.ErrBusy // the connection closed meanwhile: nobody reads the reply
	}
}

func (a *loginAttempt) checkPassword() error {
	s := a.si.srv

	acct, err := s.accounts.Load().Authenticate(a.user, a.pass)
	switch {
	case errors.Is(err, auth.ErrBusy):
		a.log().Warn("login refused", zap.String("reason", "password checks saturated"))
		s.metrics.logins.WithLabelValues("refused").Inc()

		return auth.ErrBusy
	case err != nil:
		a.log().Warn("login failed")
		if auth.IsAnonymousName(a.user) {
			s.metrics.logins.WithLabelValues("failure").Inc()
		} else {
			s.loginFailed(a.log(), a.ip, a.key)
		}

		return auth.ErrLoginIncorrect
	}

	a.acct = acct
	if !acct.Anonymous {
		s.throttle.succeeded(a.user, a.key)
	}

	return nil
}

// openHome opens the account's home folder. One that can't be opened (gone,
// unreadable by the user wharf runs as, an unmounted disk) refuses the login
// with errHomeUnavailable: the log says why, the client reads 421.
func (a *loginAttempt) openHome() error {
	root, release, err := a.si.srv.openRoot(a.acct.Home)
	if err != nil {
		a.log().Error("login failed: cannot open home", zap.String("home", a.acct.Home), zap.Int("uid", os.Geteuid()),
			zap.Error(err))
		a.si.srv.metrics.logins.WithLabelValues("refused").Inc()

		return errHomeUnavailable
	}

	a.root, a.release = root, release

	return nil
}

// driver makes the engine's ClientDriver for a verified login: the user's
// filesystem behind the policy of the account.
func (s *Server) driver(si *sessionInfo, v *verifiedLogin) *session {
	sess := &session{
		srv:      s,
		info:     si,
		account:  v.acct,
		download: newBucket(v.acct.DownloadLimit),
		upload:   newBucket(v.acct.UploadLimit),
	}

	// Anonymous sessions keep the copy of each snapshot folder they first
	// see (snapshots.go); users' homes have no snapshots.
	if _, onDisk := v.root.(*vfs.Fs); onDisk && v.acct.Anonymous {
		sess.pins = s.snaps.pins()
	}

	sess.listings = listingKeyer(v.root)
	root, disk := readView(v.root, v.acct, sess.pins)
	onDisk := disk != nil

	var pinned *vfs.Fs
	if sess.pins != nil {
		pinned = disk
	}

	if parts := s.resumeView(v.acct, root); parts != nil {
		disk, root, sess.parts = parts, parts, parts
	}

	switch acct := v.acct; {
	case acct.Anonymous && acct.UploadDir != "" && onDisk:
		box := path.Join("/", acct.UploadDir)
		sess.Fs = vfs.Resolve(s.dropBoxFs(si, v, vfs.DropBox(disk, box), box), si.cc.Path)
	case acct.Access == auth.ReadOnly:
		sess.Fs = vfs.Resolve(vfs.ReadOnly(root), si.cc.Path)
	case acct.Access == auth.WriteOnly && acct.Overwrite:
		sess.Fs = vfs.Resolve(vfs.WriteOnlyOverwrite(root), si.cc.Path)
	case acct.Access == auth.WriteOnly: // create-only; made per session, it remembers the session's uploads
		sess.Fs = vfs.Resolve(vfs.WriteOnly(root), si.cc.Path)
	default:
		sess.Fs = vfs.Resolve(root, si.cc.Path)
	}

	sess.Fs = s.manifests.wrap(sess.Fs, v.acct, si.cc.Path, pinned)

	return sess
}
