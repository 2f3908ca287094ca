package auth

import (
	"fmt"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// NeedsTLS: anonymous never, a named user by its own rule or else the
// default, an unknown name by the default; Authenticate agrees for users.
func TestNeedsTLS(t *testing.T) {
	t.Parallel()

	hash := mustHash(t, bcrypt.MinCost)

	for _, clearText := range []bool{false, true} {
		accounts, err := New(Options{
			Users: []User{
				{Name: "dflt", PasswordHash: hash},
				{Name: "req", PasswordHash: hash, TLS: TLSRequired},
				{Name: "opt", PasswordHash: hash, TLS: TLSOptional},
			},
			Anonymous:         true,
			ClearTextAccounts: clearText,
		})
		if err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct {
			name string
			want bool
		}{
			{"dflt", !clearText},
			{"req", true},
			{"opt", false},
			{"mallory", !clearText},
			{"", !clearText},
			{"anonymous", false},
			{"FTP", false},
		} {
			t.Run(fmt.Sprintf("with clear_text_accounts %v, %q needs TLS: %v", clearText, tc.name, tc.want), func(t *testing.T) {
				t.Parallel()

				if got := accounts.NeedsTLS(tc.name); got != tc.want {
					t.Errorf("NeedsTLS(%q) = %v, want %v", tc.name, got, tc.want)
				}

				acc, err := accounts.Authenticate(tc.name, "pw")
				if err != nil {
					return // unknown or empty names: nothing logged in
				}
				if acc.NeedsTLS != tc.want {
					t.Errorf("Authenticate(%q).NeedsTLS = %v, want %v", tc.name, acc.NeedsTLS, tc.want)
				}

				// A second login comes from the cache: the same answer.
				if again, _ := accounts.Authenticate(tc.name, "pw"); again.NeedsTLS != tc.want {
					t.Errorf("a cached login of %q has NeedsTLS = %v, want %v", tc.name, again.NeedsTLS, tc.want)
				}
			})
		}
	}
}
