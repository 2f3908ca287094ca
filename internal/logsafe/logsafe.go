// Package logsafe keeps client-supplied text from forging log lines. Every
// string field of a log entry (user names, paths, command verbs, error texts
// that quote them) is escaped before an encoder sees it, so a line in the
// text log, the JSON log or the xferlog says what the client sent without
// letting it move the cursor, recolour the terminal, reverse the text that
// follows (a bidi override makes "gpj.exe" read "exe.jpg") or start a new
// line.
//
// Escaped are the C0 controls and DEL, the C1 controls (U+0080 to U+009F,
// among them the 8-bit CSI U+009B and NEL U+0085), the bidi marks, embeddings,
// overrides and isolates (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to
// U+2069), the line and paragraph separators (U+2028, U+2029) and bytes that
// are not UTF-8. Each becomes a visible escape in the style of Go's %q: \n,
// \t, \r, \x1b for a control or a stray byte, \u202e for a rune. A backslash
// the client sent is kept as it is: the escapes make hostile text visible
// and inert, they are not meant to be reversed.
package logsafe

import (
	"strconv"
	"unicode/utf8"
)

// String returns s with every character listed in the package comment
// escaped; s itself when there is none, which is the common case.
func String(s string) string {
	i := firstUnsafe(s)
	if i < 0 {
		return s
	}

	out := make([]byte, 0, len(s)+16)
	out = append(out, s[:i]...)

	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out = appendByte(out, s[i])
		case unsafeRune(r):
			out = appendRune(out, r)
		default:
			out = append(out, s[i:i+size]...)
		}

		i += size
	}

	return string(out)
}

// Safe reports whether s needs no escaping.
func Safe(s string) bool { return firstUnsafe(s) < 0 }

// firstUnsafe is the index of the first byte of s to escape, or -1.
func firstUnsafe(s string) int {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == 0x7f {
				return i
			}

			i++

			continue
		}

		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || unsafeRune(r) {
			return i
		}

		i += size
	}

	return -1
}

// unsafeRune reports whether r is a control, a bidi control or a line or
// paragraph separator.
func unsafeRune(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f:
		return true
	case r >= 0x2028 && r <= 0x202e:
		return true
	case r >= 0x2066 && r <= 0x2069:
		return true
	}

	return false
}

func appendByte(out []byte, b byte) []byte {
	const hex = "0123456789abcdef"

	return append(out, '\\', 'x', hex[b>>4], hex[b&0xf])
}

func appendRune(out []byte, r rune) []byte {
	switch r {
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	}

	if r < utf8.RuneSelf {
		return appendByte(out, byte(r)) //nolint:gosec // r < 0x80
	}

	// QuoteRuneToASCII gives '\u202e' (quotes included) for these runes.
	q := strconv.QuoteRuneToASCII(r)

	return append(out, q[1:len(q)-1]...)
}
