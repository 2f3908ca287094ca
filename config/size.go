package config

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Size is an amount of bytes written in the file as a string with a unit,
// such as "100MiB" or "1.5 GB" (see ParseSize), or as a TOML integer of
// bytes. It is used for upload limits and bandwidths (bytes per second).
type Size struct{ Bytes int64 }

// sizeUnits lists the units ParseSize knows, for messages.
const sizeUnits = "B, KiB, MiB, GiB, TiB, KB, MB, GB or TB"

// unitBytes returns the bytes in one unit. Units are case-sensitive:
// KiB, MiB, GiB and TiB are powers of 1024; KB, MB, GB and TB powers of 1000.
func unitBytes(unit string) (int64, bool) {
	switch unit {
	case "B":
		return 1, true
	case "KiB":
		return 1 << 10, true
	case "MiB":
		return 1 << 20, true
	case "GiB":
		return 1 << 30, true
	case "TiB":
		return 1 << 40, true
	case "KB":
		return 1e3, true
	case "MB":
		return 1e6, true
	case "GB":
		return 1e9, true
	case "TB":
		return 1e12, true
	default:
		return 0, false
	}
}

// ParseSize reads a size such as "100MiB", "1.5 GiB", "10 MB" or "1048576"
// and returns it in bytes. A bare number is bytes and must be whole; a
// decimal needs a unit and is rounded down to whole bytes. One or more spaces
// may separate the number from the unit. Units are case-sensitive (see
// Size); a sign, an unknown unit or a result above math.MaxInt64 is an error.
func ParseSize(s string) (int64, error) {
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q: must not be negative", s)
	}

	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(s)
	}
	num, unit := s[:end], strings.TrimLeft(s[end:], " ")

	whole, frac, dot := strings.Cut(num, ".")
	if whole == "" || (dot && frac == "") || strings.Contains(frac, ".") {
		return 0, fmt.Errorf(`%q is not a size (write it like "100MiB", "1.5 GiB" or "1048576")`, s)
	}

	mult := int64(1)
	if unit != "" {
		var ok bool
		if mult, ok = unitBytes(unit); !ok {
			return 0, fmt.Errorf("%q: unknown unit %q (use %s)", s, unit, sizeUnits)
		}
	} else if dot {
		return 0, fmt.Errorf(`%q: a decimal needs a unit, like "1.5MiB" (a bare number is whole bytes)`, s)
	}

	// whole.frac × mult, exactly: (whole‖frac) × mult / 10^len(frac),
	// rounded down (Quo truncates, and both are positive).
	n, _ := new(big.Int).SetString(whole+frac, 10) // only digits, checked above
	n.Mul(n, big.NewInt(mult))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))

	if !n.IsInt64() {
		return 0, fmt.Errorf("%q: too large (at most 9223372036854775807 bytes, just under 8 EiB)", s)
	}

	return n.Int64(), nil
}

// UnmarshalTOML reads a size string (see ParseSize) or an integer of bytes.
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		n, err := ParseSize(v)
		if err != nil {
			return err
		}

		s.Bytes = n
	case int64:
		if v < 0 {
			return fmt.Errorf("%d: must not be negative", v)
		}

		s.Bytes = v
	default:
		return errors.New(`want a size such as "100MiB" or an integer of bytes, got ` + describeValue(v))
	}

	return nil
}

// String writes the size with the largest unit that holds it exactly:
// "100MiB", "10MB", "1500B", or "0".
func (s Size) String() string {
	if s.Bytes == 0 {
		return "0"
	}

	// Largest first: TiB > TB > GiB > GB > MiB > MB > KiB > KB.
	for _, unit := range []string{"TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "KB"} {
		if n, _ := unitBytes(unit); s.Bytes%n == 0 {
			return fmt.Sprintf("%d%s", s.Bytes/n, unit)
		}
	}

	return fmt.Sprintf("%dB", s.Bytes)
}

// MarshalText writes the size the way ParseSize reads it.
func (s Size) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}
