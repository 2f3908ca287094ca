package server

import (
	"bytes"
	"net"
	"strconv"
	"strings"
)

// maxLine is the longest command line the filter holds; the engine itself
// drops a client whose line passes 4096 bytes.
const maxLine = 4096

// refusedPort replaces the argument of a PORT or EPRT command that points
// below port 1024. The engine cannot parse it, so it answers 501 with this
// text in its reply, and no connection is ever made.
const refusedPort = "refused:data-port-below-1024-is-not-allowed"

// portFilter reads the clear-text control stream and rewrites PORT and EPRT
// commands whose target port is below 1024 (the engine has no port floor and
// would otherwise connect to a client's port 22 or 25: vsftpd, pure-ftpd and
// ProFTPD refuse these too). Once AUTH is seen the stream becomes TLS and the
// filter steps aside: it cannot read inside TLS (see SECURITY.md).
type portFilter struct {
	net.Conn
	pending []byte // filtered bytes not yet returned
	partial []byte // an incomplete line
	off     bool   // the stream is TLS now
}

// Read returns the client's bytes, filtered. The common case, whole command
// lines with no PORT or EPRT among them, passes through in the caller's
// buffer without a copy or an allocation: an idle session keeps no buffer here.
func (p *portFilter) Read(b []byte) (int, error) {
	for {
		if len(p.pending) > 0 {
			n := copy(b, p.pending)
			p.pending = p.pending[n:]
			if len(p.pending) == 0 {
				p.pending = nil
			}

			return n, nil
		}

		if p.off && len(p.partial) == 0 {
			return p.Conn.Read(b)
		}

		if p.off {
			p.pending, p.partial = p.partial, nil

			continue
		}

		n, err := p.Conn.Read(b)
		if n > 0 {
			if len(p.partial) == 0 {
				if ok, auth := passThrough(b[:n]); ok {
					p.off = auth

					return n, err
				}
			}

			p.feed(b[:n])
		}

		if len(p.pending) == 0 && err != nil {
			return 0, err
		}
	}
}

// passThrough reports whether chunk is whole lines none of which needs a
// rewrite, and whether one of them was AUTH (after which the stream is TLS).
func passThrough(chunk []byte) (ok, auth bool) {
	if len(chunk) == 0 || chunk[len(chunk)-1] != '\n' {
		return false, false
	}

	for line := range bytes.Lines(chunk) {
		verb, _, _ := bytes.Cut(bytes.TrimLeft(line, " "), []byte(" "))
		verb = bytes.TrimRight(verb, "\r\n")

		switch {
		case bytes.EqualFold(verb, []byte("PORT")), bytes.EqualFold(verb, []byte("EPRT")):
			return false, false
		case bytes.EqualFold(verb, []byte("AUTH")):
			return true, true
		}
	}

	return true, false
}

// feed adds bytes read from the client, moving every complete line, filtered,
// to pending.
func (p *portFilter) feed(data []byte) {
	p.partial = append(p.partial, data...)

	for !p.off {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			if len(p.partial) > maxLine {
				// Not a command line any more; let the engine deal with it.
				p.pending = append(p.pending, p.partial...)
				p.partial = nil
			}

			return
		}

		line := p.partial[:i+1]
		p.pending = append(p.pending, filterLine(line)...)
		p.partial = p.partial[i+1:]

		if isAuth(line) {
			// After AUTH the bytes are a TLS handshake, then ciphertext.
			p.off = true
		}
	}
}

// filterLine returns the line unchanged, or rewritten if it is a PORT or EPRT
// to a port below 1024.
func filterLine(line []byte) []byte {
	text := strings.TrimRight(string(line), "\r\n")
	verb, arg, _ := strings.Cut(text, " ")

	var port int
	var ok bool
	switch strings.ToUpper(verb) {
	case "PORT":
		port, ok = portOfPORT(arg)
	case "EPRT":
		port, ok = portOfEPRT(arg)
	default:
		return line
	}

	if ok && port >= 1024 {
		return line
	}

	return []byte(verb + " " + refusedPort + "\r\n")
}

// portOfPORT parses "h1,h2,h3,h4,p1,p2" (RFC 959) and returns the port.
func portOfPORT(arg string) (int, bool) {
	parts := strings.Split(strings.TrimSpace(arg), ",")
	if len(parts) != 6 {
		return 0, false
	}

	var nums [6]int
	for i, s := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 || n > 255 {
			return 0, false
		}

		nums[i] = n
	}

	return nums[4]<<8 | nums[5], true
}

// portOfEPRT parses "|proto|address|port|" (RFC 2428) and returns the port.
func portOfEPRT(arg string) (int, bool) {
	arg = strings.TrimSpace(arg)
	if len(arg) < 4 {
		return 0, false
	}

	d := arg[:1] // the delimiter, usually "|"
	fields := strings.Split(arg, d)
	if len(fields) != 5 || fields[0] != "" || fields[4] != "" {
		return 0, false
	}

	port, err := strconv.Atoi(fields[3])
	if err != nil || port < 0 || port > 65535 {
		return 0, false
	}

	return port, true
}

func isAuth(line []byte) bool {
	verb, _, _ := strings.Cut(strings.TrimSpace(string(line)), " ")

	return strings.EqualFold(verb, "AUTH")
}
