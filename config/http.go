package config

import (
	"crypto/tls"

	"wharf/server"
)

// check validates [http]. The listener serves the anonymous tree, so it
// needs anonymous access; its port is its own; with tls it needs the [tls]
// certificate even when FTP runs without TLS.
func (h HTTP) check(p *problems, c Config) {
	if h.Listen == "" {
		return // tls is not used, so not checked
	}

	switch err := checkListen(h.Listen); {
	case err != nil:
		p.add("http.listen", err)
	case sameListener(h.Listen, c.Listen):
		p.addf("http.listen", "%q overlaps listen %q: the HTTP listener needs a port of its own", h.Listen, c.Listen)
	case c.Admin.Listen != "" && sameListener(h.Listen, c.Admin.Listen):
		p.addf("http.listen", "%q overlaps admin.listen %q: the HTTP listener needs a port of its own", h.Listen, c.Admin.Listen)
	}

	if !c.Anonymous.Enabled {
		p.addf("http.listen", "set while anonymous.enabled is false: the HTTP listener serves the anonymous tree")
	}

	if !h.TLS || !c.TLS.Mode.Is(server.TLSOff) {
		return // without TLS nothing to check; with tls.mode on, TLS.check read the files
	}

	switch {
	case c.TLS.CertFile == "":
		p.addf("tls.cert_file", "required when http.tls is true")
	case c.TLS.KeyFile == "":
		p.addf("tls.key_file", "required when http.tls is true")
	default:
		if _, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile); err != nil {
			p.addf("http.tls", "tls.cert_file %q with tls.key_file %q: %w", c.TLS.CertFile, c.TLS.KeyFile, err)
		}
	}
}
