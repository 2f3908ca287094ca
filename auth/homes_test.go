package auth

import (
	"slices"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestHomesListsEachFolderOnce(t *testing.T) {
	t.Parallel()

	hash := mustHash(t, bcrypt.MinCost)
	users := []User{
		{Name: "alice", PasswordHash: hash, Home: "/srv/shared", Access: ReadWrite},
		{Name: "bob", PasswordHash: hash, Home: "/srv/bob", Access: ReadWrite},
		{Name: "carol", PasswordHash: hash, Home: "/srv/shared", Access: ReadOnly},
	}

	for _, tc := range []struct {
		name      string
		anonymous bool
		want      []string
	}{
		{"with anonymous", true, []string{"/srv/bob", "/srv/pub", "/srv/shared"}},
		{"without anonymous", false, []string{"/srv/bob", "/srv/shared"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()

			accounts, err := New(Options{Users: users, Anonymous: tc.anonymous, AnonymousRoot: "/srv/pub"})
			if err != nil {
				t.Fatal(err)
			}

			if got := accounts.Homes(); !slices.Equal(got, tc.want) {
				t.Errorf("Homes() = %q, want %q", got, tc.want)
			}
		})
	}
}
