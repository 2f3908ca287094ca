// Package sums reads the checksum files mirrors publish beside their files
// (SHA256SUMS, MD5SUMS, file.iso.sha256, Fedora's *-CHECKSUM), so that a
// server can tell a file's digest without reading the file.
//
// Three line formats are understood, in any mix:
//   - GNU (sha256sum and friends): "<hex>  name" (text mode) or
//     "<hex> *name" (binary mode); a line starting with a backslash has its
//     name escaped ("\\" and "\n").
//   - BSD tag (sha256sum --tag, OpenSSL, Fedora): "SHA256 (name) = <hex>".
//   - A lone "<hex>" line, in a file named after the one file it covers
//     (file.iso.sha256): see Parse's own argument.
//
// A clear-signed file (-----BEGIN PGP SIGNED MESSAGE-----, as Ubuntu and
// Debian sign their SHA256SUMS) is read from its signed body: the armor
// headers (Hash: SHA256) are skipped, dash-escaped lines ("- " in front)
// unescaped, and the signature block ignored. The signature is NOT verified:
// a server answering HASH from these files vouches only that the file it
// serves is the one its checksum file names, not for who signed it. Clients
// that care verify the signature themselves.
package sums

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"path"
	"strings"
)

// Algo is a hash algorithm a checksum file may publish.
type Algo uint8

// The algorithms of HASH (draft-bryan-ftpext-hash-02), in FEAT's order.
const (
	SHA256 Algo = iota
	SHA512
	SHA1
	MD5
)

// Algos are every Algo, in FEAT's order.
var Algos = []Algo{SHA256, SHA512, SHA1, MD5}

// String is the algorithm's name in HASH replies: "SHA-256".
func (a Algo) String() string {
	switch a {
	case SHA256:
		return "SHA-256"
	case SHA512:
		return "SHA-512"
	case SHA1:
		return "SHA-1"
	case MD5:
		return "MD5"
	}

	return "unknown"
}

// Size is the digest's length in bytes.
func (a Algo) Size() int {
	switch a {
	case SHA256:
		return 32
	case SHA512:
		return 64
	case SHA1:
		return 20
	case MD5:
		return 16
	}

	return 0
}

// ParseAlgo reads an algorithm's name as HASH, BSD tags and file names
// write it, in any case: "SHA-256", "SHA256", "SHA2-256", "sha256".
func ParseAlgo(name string) (Algo, bool) {
	switch strings.ToUpper(strings.ReplaceAll(name, "-", "")) {
	case "SHA256", "SHA2256":
		return SHA256, true
	case "SHA512", "SHA2512":
		return SHA512, true
	case "SHA1":
		return SHA1, true
	case "MD5":
		return MD5, true
	}

	return 0, false
}

// bySize is the algorithm a bare GNU digest of n hex digits is, when the
// file's name does not say.
func bySize(n int) (Algo, bool) {
	for _, a := range Algos {
		if a.Size()*2 == n {
			return a, true
		}
	}

	return 0, false
}

// hint is the algorithm a checksum file's name says it holds, if any:
// SHA256SUMS, file.iso.sha256, MD5SUMS. A CHECKSUM file says nothing: its
// lines do (BSD tags), or their lengths.
func hint(name string) (Algo, bool) {
	lower := strings.ToLower(name)

	for _, c := range []struct {
		word string
		algo Algo
	}{{"sha256", SHA256}, {"sha512", SHA512}, {"sha1", SHA1}, {"md5", MD5}} {
		if i := strings.Index(lower, c.word); i >= 0 {
			// "sha1" must not be the start of "sha12..." (no such name), nor of "sha128".
			if end := i + len(c.word); end < len(lower) && lower[end] >= '0' && lower[end] <= '9' {
				continue
			}

			return c.algo, true
		}
	}

	return 0, false
}

// ErrTooBig reports a checksum file longer than Parse reads.
var ErrTooBig = errors.New("checksum file too big")

// File is a parsed checksum file: digests by the names its lines give,
// cleaned ("./a/b" is "a/b").
type File struct {
	digests map[string]string // Algo byte + name -> raw digest bytes
	cost    int64             // an estimate of the memory held, for the cache
}

// Lookup is the digest of name (a path relative to the checksum file's
// folder) for algo, if the file has one.
func (f *File) Lookup(name string, algo Algo) ([]byte, bool) {
	if f == nil {
		return nil, false
	}

	d, ok := f.digests[string(rune(algo))+name]

	return []byte(d), ok
}

// Len is how many digests the file holds.
func (f *File) Len() int { return len(f.digests) }

// Cost is an estimate of the memory the parsed file holds.
func (f *File) Cost() int64 { return f.cost }

// entryCost is what one digest costs in memory beyond its name and bytes:
// the map's slot and two string headers.
const entryCost = 64

// Parse reads a checksum file named name (its base name gives the
// algorithm of bare GNU lines: SHA256SUMS, x.sha256; and the name a lone
// digest covers: x.iso.sha256 covers x.iso), at most limit bytes of it. A
// longer file is refused whole with ErrTooBig rather than half read. Lines
// that are not checksums (comments, blank lines, other algorithms) are
// skipped.
func Parse(r io.Reader, name string, limit int64) (*File, error) {
	f := &File{digests: make(map[string]string)}
	named, hinted := hint(name)
	lone := ""
	if ext := path.Ext(name); hinted && ext != "" {
		if _, ok := ParseAlgo(ext[1:]); ok {
			lone = strings.TrimSuffix(name, ext)
		}
	}

	sc := bufio.NewScanner(io.LimitReader(r, limit+1))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)

	var read int64
	signed, headers := false, false
	first := true

	for sc.Scan() {
		raw := sc.Bytes()
		read += int64(len(raw)) + 1
		line := string(bytes.TrimRight(raw, "\r"))

		if first {
			first = false
			if line == "-----BEGIN PGP SIGNED MESSAGE-----" {
				signed, headers = true, true

				continue
			}
		}

		if signed {
			switch {
			case headers:
				headers = line != "" // "Hash: SHA256" and the like, up to a blank line
				continue
			case strings.HasPrefix(line, "-----BEGIN PGP SIGNATURE-----"):
				return f, nil
			case strings.HasPrefix(line, "- "):
				line = line[2:] // dash-escaped (RFC 4880, 7.1)
			}
		}

		f.add(line, named, hinted, lone)
	}

	if read > limit {
		return nil, ErrTooBig
	}

	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, ErrTooBig
		}

		return nil, err
	}

	return f, nil
}

// add reads one line, if it is a checksum.
func (f *File) add(line string, named Algo, hinted bool, lone string) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return
	}

	if algo, name, sum, ok := bsdLine(line); ok {
		f.put(algo, name, sum)

		return
	}

	escaped := line[0] == '\\'
	if escaped {
		line = line[1:]
	}

	sum, name, found := strings.Cut(line, " ")
	switch {
	case !found && lone != "" && !escaped:
		sum, name = line, lone
	case !found:
		return
	case name != "" && (name[0] == ' ' || name[0] == '*'):
		// " name" (text) or "*name" (binary); a single space before a
		// name is also what some tools write.
		name = name[1:]
	}

	if name == "" {
		return
	}

	if escaped {
		name = unescape(name)
	}

	algo, ok := bySize(len(sum))
	if hinted {
		algo, ok = named, len(sum) == named.Size()*2
	}

	if ok {
		f.put(algo, name, sum)
	}
}

// bsdLine reads "SHA256 (name) = hex" (also "SHA256(name)= hex").
func bsdLine(line string) (Algo, string, string, bool) {
	open := strings.IndexByte(line, '(')
	closing := strings.LastIndex(line, ")")
	if open <= 0 || closing < open {
		return 0, "", "", false
	}

	algo, ok := ParseAlgo(strings.TrimSpace(line[:open]))
	rest := strings.TrimSpace(line[closing+1:])
	if !ok || !strings.HasPrefix(rest, "=") {
		return 0, "", "", false
	}

	return algo, line[open+1 : closing], strings.TrimSpace(rest[1:]), true
}

// unescape undoes GNU's escaping of a name with a backslash or a newline.
func unescape(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] == '\\' && i+1 < len(name) {
			i++
			switch name[i] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(name[i])
			}

			continue
		}

		b.WriteByte(name[i])
	}

	return b.String()
}

// put records one digest, unless its hex is not one of algo.
func (f *File) put(algo Algo, name, sum string) {
	if len(sum) != algo.Size()*2 {
		return
	}

	raw, err := hex.DecodeString(sum)
	if err != nil {
		return
	}

	name = path.Clean(name)
	if name == "." || name == ".." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
		return
	}

	key := string(rune(algo)) + name
	if _, dup := f.digests[key]; !dup {
		f.cost += int64(len(key)+len(raw)) + entryCost
	}

	f.digests[key] = string(raw)
}
