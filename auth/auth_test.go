package auth

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

func mustHash(t *testing.T, cost int) string {
	t.Helper()

	h, err := bcrypt.GenerateFromPassword([]byte("pw"), cost)
	if err != nil {
		t.Fatal(err)
	}

	return string(h)
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()

	accounts, err := New(Options{
		Users:         []User{{Name: "alice", PasswordHash: mustHash(t, bcrypt.MinCost), Home: "/srv/alice", Access: ReadWrite, UploadLimit: 7}},
		Anonymous:     true,
		AnonymousRoot: "/srv/pub",
	})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, user, pass string
		wantErr          bool
		want             Account
	}{
		{"a user with the right password logs in", "alice", "pw", false,
			Account{Name: "alice", Home: "/srv/alice", Access: ReadWrite, UploadLimit: 7, NeedsTLS: true}},
		{"a wrong password is refused", "alice", "nope", true, Account{}},
		{"an unknown user is refused", "mallory", "pw", true, Account{}},
		{"an empty name is refused", "", "pw", true, Account{}},
		{"anonymous logs in read-only with any password", "anonymous", "me@example.com", false,
			Account{Name: "anonymous", Home: "/srv/pub", Access: ReadOnly, Anonymous: true, Password: "me@example.com"}},
		{"ftp is anonymous too", "FTP", "", false, Account{Name: "anonymous", Home: "/srv/pub", Access: ReadOnly, Anonymous: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			got, err := accounts.Authenticate(tc.user, tc.pass)
			if tc.wantErr {
				if !errors.Is(err, ErrLoginIncorrect) {
					t.Fatalf("got %v, want ErrLoginIncorrect", err)
				}

				return
			}

			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestNewRefusesBadAccounts(t *testing.T) {
	t.Parallel()

	good := mustHash(t, bcrypt.MinCost)
	for _, tc := range []struct {
		name  string
		users []User
	}{
		{"a plain-text password", []User{{Name: "a", PasswordHash: "secret"}}},
		{"a duplicate name", []User{{Name: "a", PasswordHash: good}, {Name: "a", PasswordHash: good}}},
		{"a reserved name", []User{{Name: "Anonymous", PasswordHash: good}}},
		{"an empty name", []User{{PasswordHash: good}}},
		{"a TLS rule out of range", []User{{Name: "a", PasswordHash: good, TLS: TLSOptional + 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			if _, err := New(Options{Users: tc.users}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestAnonymousDisabled(t *testing.T) {
	t.Parallel()

	accounts, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := accounts.Authenticate("anonymous", "x"); !errors.Is(err, ErrLoginIncorrect) {
		t.Fatalf("got %v", err)
	}
}

// Unknown names are checked against a dummy hash of the users' own cost, so
// they take as long as known names.
func TestUnknownUserCostsAsMuchAsAKnownOne(t *testing.T) {
	t.Parallel()

	const cost = 8
	accounts, err := New(Options{Users: []User{{Name: "alice", PasswordHash: mustHash(t, cost)}}})
	if err != nil {
		t.Fatal(err)
	}

	if got, _ := bcrypt.Cost(accounts.dummy); got != cost {
		t.Fatalf("dummy hash cost %d, want %d", got, cost)
	}
}

func TestPasswordChecksAreBounded(t *testing.T) {
	t.Parallel()

	accounts, err := New(Options{Checks: 1, Users: []User{{Name: "alice", PasswordHash: mustHash(t, bcrypt.MinCost)}}})
	if err != nil {
		t.Fatal(err)
	}

	accounts.checks <- struct{}{} // the one slot is taken

	start := time.Now()
	if _, err := accounts.Authenticate("alice", "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}

	if took := time.Since(start); took > time.Second {
		t.Fatalf("a saturated check waited %v instead of failing fast", took)
	}

	<-accounts.checks
	if _, err := accounts.Authenticate("alice", "pw"); err != nil {
		t.Fatalf("after the slot was freed: %v", err)
	}
}

func TestVerifiedLoginsAreCached(t *testing.T) {
	t.Parallel()

	accounts, err := New(Options{Checks: 1, Users: []User{{Name: "alice", PasswordHash: mustHash(t, bcrypt.MinCost)}}})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := accounts.Authenticate("alice", "pw"); err != nil {
		t.Fatal(err)
	}

	// With the only bcrypt slot taken, a cached login still succeeds and a
	// wrong password (never cached) cannot be checked.
	accounts.checks <- struct{}{}
	defer func() { <-accounts.checks }()

	if _, err := accounts.Authenticate("alice", "pw"); err != nil {
		t.Fatalf("a verified login was not cached: %v", err)
	}

	if _, err := accounts.Authenticate("alice", "wrong"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a wrong password got %v, want it to need bcrypt", err)
	}
}

func TestCredentialCache(t *testing.T) {
	t.Parallel()

	c := newCredCache()
	now := time.Now()
	c.now = func() time.Time { return now }

	c.add("alice", "pw", "hash1")
	if !c.has("alice", "pw", "hash1") {
		t.Fatal("a verified login is not remembered")
	}

	for _, tc := range [][3]string{{"alice", "pw", "hash2"}, {"alice", "PW", "hash1"}, {"bob", "pw", "hash1"}, {"alicepw", "", "hash1"}} {
		if c.has(tc[0], tc[1], tc[2]) {
			t.Errorf("%q matched alice's entry", tc)
		}
	}

	now = now.Add(cacheTTL + time.Second)
	if c.has("alice", "pw", "hash1") {
		t.Fatal("an expired entry still matched")
	}

	for i := range cacheEntries + 10 {
		c.add("u", string(rune(i)), "h")
	}

	if len(c.ok) > cacheEntries {
		t.Fatalf("the cache grew to %d entries", len(c.ok))
	}
}

// The example's placeholder and the hash an earlier example published are
// refused by name; the placeholder matches no password even where a check
// would let it through.
func TestCheckHashRefusesKnownHashes(t *testing.T) {
	t.Parallel()

	if err := CheckHash(PlaceholderHash); !errors.Is(err, ErrPlaceholderHash) {
		t.Errorf("CheckHash(PlaceholderHash) = %v, want ErrPlaceholderHash", err)
	}

	if err := bcrypt.CompareHashAndPassword([]byte(publishedHash), []byte("change-me")); err != nil {
		t.Fatalf("publishedHash is not the hash of change-me: %v", err)
	}
	if err := CheckHash(publishedHash); !errors.Is(err, ErrPublishedHash) {
		t.Errorf("CheckHash(publishedHash) = %v, want ErrPublishedHash", err)
	}

	for _, pw := range []string{"", "change-me", "REPLACE.WITH.THE.OUTPUT.OF.wharf.hash-password"} {
		if err := bcrypt.CompareHashAndPassword([]byte(PlaceholderHash), []byte(pw)); err == nil {
			t.Errorf("the placeholder matches %q", pw)
		}
	}

	if err := CheckHash(mustHash(t, bcrypt.MinCost)); err != nil {
		t.Errorf("CheckHash(a real hash) = %v", err)
	}
}
