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

func (r TLSRule) valid() bool { return r >= TLSDefault && r <= TLSOptional }
