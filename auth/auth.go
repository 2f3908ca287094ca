package auth

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// ErrLoginIncorrect is the one answer to every failed login, whatever the cause.
var ErrLoginIncorrect = errors.New("login incorrect")

// ErrBusy means every password check slot stayed taken: the login was not
// checked at all, and the client should try again later.
var ErrBusy = errors.New("too many logins in progress, try again later")

// busyWait is how long a login waits for a password check slot.
const busyWait = 100 * time.Millisecond

// AnonymousNames are the user names that log in as the anonymous account.
var anonymousNames = []string{"anonymous", "ftp"}

// IsAnonymousName reports whether name is one of the names reserved for anonymous logins.
func IsAnonymousName(name string) bool {
	for _, n := range anonymousNames {
		if strings.EqualFold(name, n) {
			return true
		}
	}

	return false
}

// dummyHash is compared against when the user name is unknown, so that an
// unknown name costs as much time as a known one with a wrong password.
// It is the bcrypt hash (cost 10) of a string nobody uses as a password; New
// makes one at the cost most users have when that cost differs.
const dummyHash = "$2a$10$4lBHiHApc0UMRidsDew6kulo4SyK4ViERmSrkBiv1X9HRLy.hoYda"

// User is a configured account with a password.
type User struct {
	Name         string
	PasswordHash string // bcrypt: $2a$, $2b$ or $2y$
	Home         string // directory on disk that becomes the user's "/"
	Access       Access
	// DownloadLimit and UploadLimit cap each of the user's sessions, in
	// bytes per second; 0 means unlimited.
	DownloadLimit, UploadLimit int64
	// TLS is whether the user must use TLS where the server offers it (see NeedsTLS).
	TLS TLSRule
	// Overwrite lets a write-only account replace or append to files that
	// exist ([[users]] overwrite); without it write-only means create-only.
	Overwrite bool
}

// Options lists the accounts that may log in.
type Options struct {
	Users []User
	// Anonymous enables the anonymous account, served from AnonymousRoot.
	Anonymous     bool
	AnonymousRoot string
	// AnonymousUploadDir is a folder under AnonymousRoot where anonymous
	// users may upload new files; "" allows no uploads.
	AnonymousUploadDir string
	// AnonymousMaxUpload caps one anonymous upload, in bytes; 0 means unlimited.
	AnonymousMaxUpload int64
	// AnonymousWorldReadableOnly shows anonymous sessions only what others may
	// read on disk: a file without the other-read bit, or below a folder
	// without other-read and other-execute, is neither listed nor served.
	AnonymousWorldReadableOnly bool
	// AnonymousDownloadLimit and AnonymousUploadLimit cap each anonymous
	// session, in bytes per second; 0 means unlimited.
	AnonymousDownloadLimit, AnonymousUploadLimit int64
	// ClearTextAccounts lets named users whose TLS is TLSDefault log in and
	// transfer without TLS; false makes them use it where the server offers
	// it. Anonymous logins are not concerned (see NeedsTLS).
	ClearTextAccounts bool
	// Checks is how many bcrypt comparisons may run at once; 0 means
	// GOMAXPROCS. A bcrypt check costs tens of milliseconds of CPU, so a
	// password flood would otherwise queue every login behind it.
	Checks int
}

// Account is a successful login: who it is and what it may reach.
type Account struct {
	Name      string // user name; "anonymous" for anonymous logins
	Home      string // directory on disk that becomes the session's "/"
	Access    Access
	Anonymous bool
	// Password is what an anonymous user gave as password (by custom an
	// e-mail address); it is empty for named users, whose password is never kept.
	Password string
	// UploadDir is, for anonymous sessions, the one folder that accepts
	// uploads ("" = none); MaxUpload caps one upload in bytes (0 = no cap).
	UploadDir string
	MaxUpload int64
	// WorldReadableOnly, for anonymous sessions, hides what others may not
	// read on disk (Options.AnonymousWorldReadableOnly).
	WorldReadableOnly bool
	// Overwrite, for a write-only account, allows replacing existing files (User.Overwrite).
	Overwrite bool
	// DownloadLimit and UploadLimit cap the session in bytes per second (0 = unlimited).
	DownloadLimit, UploadLimit int64
	// NeedsTLS is what Accounts.NeedsTLS answers for the account: the session
	// must use TLS and PROT P where the server offers TLS. Always false for anonymous.
	NeedsTLS bool
}

// Accounts checks logins. It is safe for concurrent use and never changes after New.
type Accounts struct {
	users  map[string]User
	opts   Options
	dummy  []byte        // hash checked for unknown names
	checks chan struct{} // one token per bcrypt check running
	cache  *credCache    // logins bcrypt already verified
}

// New validates the accounts and indexes them by name.
func New(opts Options) (*Accounts, error) {
	users := make(map[string]User, len(opts.Users))

	var errs []error
	for i, u := range opts.Users {
		switch {
		case u.Name == "":
			errs = append(errs, fmt.Errorf("users[%d]: empty name", i))
		case IsAnonymousName(u.Name):
			errs = append(errs, fmt.Errorf("users[%d] %q: name is reserved for anonymous logins", i, u.Name))
		case users[u.Name].Name != "":
			errs = append(errs, fmt.Errorf("users[%d] %q: duplicate name", i, u.Name))
		}

		if err := CheckHash(u.PasswordHash); err != nil {
			errs = append(errs, fmt.Errorf("users[%d] %q: password: %w", i, u.Name, err))
		}

		if !u.TLS.valid() {
			errs = append(errs, fmt.Errorf("users[%d] %q: %s is not a TLS rule", i, u.Name, u.TLS))
		}

		users[u.Name] = u
	}

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	dummy, err := dummyFor(opts.Users)
	if err != nil {
		return nil, err
	}

	checks := opts.Checks
	if checks <= 0 {
		checks = runtime.GOMAXPROCS(0)
	}

	return &Accounts{
		users:  users,
		opts:   opts,
		dummy:  dummy,
		checks: make(chan struct{}, checks),
		cache:  newCredCache(),
	}, nil
}

// dummyFor returns a hash at the bcrypt cost most users have, so that a
// check against it takes as long as a check against a real user's hash.
func dummyFor(users []User) ([]byte, error) {
	counts := map[int]int{}
	best := bcrypt.DefaultCost
	for _, u := range users {
		c, err := bcrypt.Cost([]byte(u.PasswordHash))
		if err != nil {
			continue
		}
		counts[c]++
		if counts[c] > counts[best] {
			best = c
		}
	}

	if best == bcrypt.DefaultCost {
		return []byte(dummyHash), nil
	}

	h, err := bcrypt.GenerateFromPassword([]byte("wharf-dummy-password-for-unknown-users"), best)
	if err != nil {
		return nil, fmt.Errorf("make dummy hash: %w", err)
	}

	return h, nil
}

// PlaceholderHash stands where a password hash belongs in config.toml.example
// and in deploy/'s users file. It has the form of a bcrypt hash, but its hash
// part is one character too long, so no password matches it; CheckHash
// refuses it by name, so a copied example never becomes a live account.
const PlaceholderHash = "$2a$10$REPLACE.WITH.THE.OUTPUT.OF.wharf.hash-password........"

// publishedHash is the bcrypt hash of "change-me" that config.toml.example
// once shipped, live: anyone who read the example can log in with it.
const publishedHash = "$2a$10$chT983CcYfE4a3LSurq1Xu941Gu5GP4HTrwdRbk7cl.90oy0c4fEK"

var (
	// ErrPlaceholderHash refuses PlaceholderHash: the example's account was
	// copied without a password of its own.
	ErrPlaceholderHash = errors.New("the placeholder of the example configuration, not a hash: " +
		"put the output of wharf hash-password here")
	// ErrPublishedHash refuses a hash whose password is public.
	ErrPublishedHash = errors.New(`the hash of "change-me" that an earlier config.toml.example published: ` +
		"anyone could log in; make a new one with wharf hash-password")
)

// CheckHash returns an error unless hash is a bcrypt hash wharf accepts: not
// PlaceholderHash (ErrPlaceholderHash) nor a hash whose password was
// published (ErrPublishedHash).
func CheckHash(hash string) error {
	switch hash {
	case PlaceholderHash:
		return ErrPlaceholderHash
	case publishedHash:
		return ErrPublishedHash
	}

	if !strings.HasPrefix(hash, "$2a$") && !strings.HasPrefix(hash, "$2b$") && !strings.HasPrefix(hash, "$2y$") {
		return errors.New("not a bcrypt hash (plain-text passwords are refused; use wharf hash-password)")
	}

	if _, err := bcrypt.Cost([]byte(hash)); err != nil {
		return fmt.Errorf("not a valid bcrypt hash: %w", err)
	}

	return nil
}

// Authenticate checks a user name and password. Every failure is ErrLoginIncorrect.
func (a *Accounts) Authenticate(name, password string) (Account, error) {
	if name == "" {
		return Account{}, ErrLoginIncorrect
	}

	if IsAnonymousName(name) {
		if !a.opts.Anonymous {
			return Account{}, ErrLoginIncorrect
		}

		return Account{
			Name:              "anonymous",
			Home:              a.opts.AnonymousRoot,
			Access:            ReadOnly,
			Anonymous:         true,
			Password:          password,
			UploadDir:         a.opts.AnonymousUploadDir,
			MaxUpload:         a.opts.AnonymousMaxUpload,
			WorldReadableOnly: a.opts.AnonymousWorldReadableOnly,
			DownloadLimit:     a.opts.AnonymousDownloadLimit,
			UploadLimit:       a.opts.AnonymousUploadLimit,
		}, nil
	}

	u, known := a.users[name]
	if known && a.cache.has(name, password, u.PasswordHash) {
		return a.account(u), nil
	}

	hash := a.dummy
	if known {
		hash = []byte(u.PasswordHash)
	}

	timer := time.NewTimer(busyWait)
	select {
	case a.checks <- struct{}{}:
		timer.Stop()
	case <-timer.C:
		return Account{}, ErrBusy
	}

	err := bcrypt.CompareHashAndPassword(hash, []byte(password))
	<-a.checks

	if !known || err != nil {
		return Account{}, ErrLoginIncorrect
	}

	a.cache.add(name, password, u.PasswordHash)

	return a.account(u), nil
}

func (a *Accounts) account(u User) Account {
	return Account{
		Name:          u.Name,
		Home:          u.Home,
		Access:        u.Access,
		DownloadLimit: u.DownloadLimit,
		UploadLimit:   u.UploadLimit,
		NeedsTLS:      a.needsTLS(u.TLS),
		Overwrite:     u.Overwrite,
	}
}

// NeedsTLS reports whether a login as name must come over TLS and its
// transfers use PROT P, on a server that offers TLS, as vsftpd's
// force_local_logins_ssl and force_local_data_ssl do. Anonymous names never
// need it; a named user follows its own rule, else the default
// (!Options.ClearTextAccounts); an unknown name follows the default, so the
// answer tells nothing about which names exist unless per-user rules differ
// from the default.
func (a *Accounts) NeedsTLS(name string) bool {
	if IsAnonymousName(name) {
		return false
	}

	return a.needsTLS(a.users[name].TLS) // an unknown name has the zero rule, TLSDefault
}

func (a *Accounts) needsTLS(r TLSRule) bool {
	switch r {
	case TLSDefault:
		return !a.opts.ClearTextAccounts
	case TLSOptional:
		return false
	case TLSRequired:
		return true
	}

	return true // New refuses any other rule; asking for TLS is the safe answer
}

// Hash returns the bcrypt hash of password at bcrypt's default cost.
func Hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}

	return string(h), nil
}
