package auth

import "fmt"

// TLSRule is whether one account must use TLS (RFC 4217) when the server offers it.
type TLSRule int

// The rules a named account can have.
const (
	// TLSDefault follows Options.ClearTextAccounts.
	TLSDefault TLSRule = iota
	// TLSRequired makes the account log in over TLS and transfer with PROT P.
	TLSRequired
	// TLSOptional lets the account log in and transfer in clear text.
	TLSOptional
)

// String returns the rule as written in the configuration file: "" for
// TLSDefault (the key left out), "required" or "optional".
func (r TLSRule) String() string {
	switch r {
	case TLSDefault:
		return ""
	case TLSRequired:
		return "required"
	case TLSOptional:
		return "optional"
	default:
		return fmt.Sprintf("TLSRule(%d)", int(r))
	}
}

// ParseTLSRule reads a rule as written in the configuration file; "" is TLSDefault.
func ParseTLSRule(s string) (TLSRule, error) {
	for _, r := range []TLSRule{TLSDefault, TLSRequired, TLSOptional} {
		if r.String() == s {
			return r, nil
		}
	}

	return TLSDefault, fmt.Errorf("%q is not a TLS rule (required or optional)", s)
}

// UnmarshalText reads the rule with ParseTLSRule, so that a configuration
// file decodes straight into a TLSRule.
func (r *TLSRule) UnmarshalText(text []byte) error {
	v, err := ParseTLSRule(string(text))
	if err != nil {
		return err
	}

	*r = v

	return nil
}

// MarshalText writes the rule the way UnmarshalText reads it.
func (r TLSRule) MarshalText() ([]byte, error) {
	if !r.valid() {
		return nil, fmt.Errorf("%s is not a TLS rule", r)
	}

	return []byte(r.String()), nil
}

func (r TLSRule) valid() bool { return r >= TLSDefault && r <= TLSOptional }
