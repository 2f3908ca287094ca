package auth

import (
	"fmt"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestTLSRuleNames(t *testing.T) {
	t.Parallel()

	for _, r := range []TLSRule{TLSDefault, TLSRequired, TLSOptional} {
		got, err := ParseTLSRule(r.String())
		if err != nil || got != r {
			t.Errorf("ParseTLSRule(%q) = %v, %v", r.String(), got, err)
		}

		var back TLSRule
		text, err := r.MarshalText()
		if err != nil || back.UnmarshalText(text) != nil || back != r {
			t.Errorf("%v does not survive MarshalText and UnmarshalText: %q, %v, %v", r, text, err, back)
		}
	}

	for _, s := range []string{"sometimes", "Required", "default", " required"} {
		if _, err := ParseTLSRule(s); err == nil {
			t.Errorf("ParseTLSRule(%q) accepted it", s)
		}
	}

	if _, err := (TLSOptional + 1).MarshalText(); err == nil {
		t.Error("MarshalText accepted a rule out of range")
	}
}

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
