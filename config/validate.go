package config

import (
	"context"
	"crypto/tls"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"wharf/auth"
	"wharf/server"
)

// Validate checks every rule, fills PublicIP by resolving public_host, and
// returns all problems joined with errors.Join, one per line, each starting
// with its key (Parse prefixes them with the file name as well). Paths are
// checked as written, relative to the working directory.
func (c *Config) Validate() error {
	p := &problems{}
	c.validate(p, net.DefaultResolver)

	return p.err()
}

// resolver looks up host names; *net.Resolver is one.
type resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// resolveTimeout bounds the lookup of public_host at start-up.
const resolveTimeout = 10 * time.Second

func (c *Config) validate(p *problems, r resolver) {
	if err := checkListen(c.Listen); err != nil {
		p.add("listen", err)
	}

	ip, err := resolvePublicHost(c.PublicHost, r)
	if err != nil {
		p.add("public_host", err)
	}
	c.PublicIP = ip

	if err := checkPassivePorts(c.PassivePorts); err != nil {
		p.add("passive_ports", err)
	}

	if c.IdleTimeout.Duration <= 0 {
		p.addf("idle_timeout", "must be more than 0, got %s", c.IdleTimeout)
	}
	if c.MaxClients < 1 {
		p.addf("max_clients", "must be at least 1, got %d", c.MaxClients)
	}
	if c.MaxClientsPerIP < 1 {
		p.addf("max_clients_per_ip", "must be at least 1, got %d", c.MaxClientsPerIP)
	}
	if strings.ContainsAny(c.Banner, "\r\n") {
		p.addf("banner", "must be one line (no CR or LF): it is sent in the 220 reply")
	}
	c.BannerText = ""
	if c.BannerFile != "" {
		if c.Banner != Default().Banner {
			// One of them would silently win.
			p.addf("banner_file", "set together with banner %q: keep one (banner_file replaces banner)", c.Banner)
		}
		c.BannerText = readMessage(p, "banner_file", c.BannerFile, 220)
	}
	if c.ShutdownTimeout.Duration < 0 {
		p.addf("shutdown_timeout", "must not be negative, got %s", c.ShutdownTimeout)
	}
	checkEnum(p, "upload_mode", c.UploadMode)
	checkEnum(p, "upload_sync", c.UploadSync)
	if c.DataTimeout.Duration <= 0 {
		p.addf("data_timeout", "must be more than 0, got %s", c.DataTimeout)
	}
	if c.MaxListEntries < 1 {
		p.addf("max_list_entries", "must be at least 1, got %d", c.MaxListEntries)
	}
	if c.LoginTimeout.Duration <= 0 {
		p.addf("login_timeout", "must be more than 0, got %s", c.LoginTimeout)
	}
	checkSize(p, "max_listing_memory", c.MaxListingMemory)
	if c.UploadResumeWindow.Duration < 0 {
		p.addf("upload_resume_window", `must not be negative ("0s" turns resuming off), got %s`, c.UploadResumeWindow)
	}
	if w := c.WatchInterval.Duration; w < 0 || (w > 0 && w < MinWatchInterval) {
		p.addf("watch_interval", `must be "0s" (no watching) or at least %s, got %s`, MinWatchInterval, c.WatchInterval)
	}

	checkEnum(p, "log.level", c.Log.Level)
	checkEnum(p, "log.format", c.Log.Format)
	if c.Log.TransferLog != "" {
		checkLogFile(p, "log.transfer_log", c.Log.TransferLog)
	}
	if c.Log.File != "" {
		checkLogFile(p, "log.file", c.Log.File)
	}

	c.TLS.check(p)
	c.Storage.check(p)
	c.Anonymous.check(p, c.Storage.S3(), c.CreateMissing)
	c.Listing.check(p)
	c.Hash.check(p)
	c.Manifest.check(p, c.Anonymous.Enabled)
	if !c.Anonymous.Enabled && len(c.Users) == 0 {
		p.addf("anonymous.enabled", "false and there are no [[users]]: nobody could log in")
	}

	checkSize(p, "bandwidth.total_download", c.Bandwidth.TotalDownload)
	checkSize(p, "bandwidth.total_upload", c.Bandwidth.TotalUpload)
	checkSize(p, "bandwidth.session_download", c.Bandwidth.SessionDownload)
	checkSize(p, "bandwidth.session_upload", c.Bandwidth.SessionUpload)

	c.Ban.check(p)
	checkNetworks(p, "access.allow", c.Access.Allow)
	checkNetworks(p, "access.deny", c.Access.Deny)
	checkNetworks(p, "proxy_protocol.trusted", c.ProxyProtocol.Trusted)
	c.Admin.check(p, c.Listen)
	c.checkSnapshots(p)
	c.HTTP.check(p, *c)

	checkUsers(p, c.Users, c.Storage.S3(), c.TLS.Mode, c.CreateMissing, c.publicTree())
}

// checkListen accepts host:port with a port from 0 (any free port) to 65535.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port such as \"0.0.0.0:2121\": %w", err)
	}

	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q in %q is not a number from 0 to 65535", port, addr)
	}

	return nil
}

// sameListener reports whether listening on a and b (both host:port) would
// take the same port: the same non-zero port on the same host, or with
// either host being every address ("", "0.0.0.0", "::").
func sameListener(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil {
		return false
	}

	pa, errA := strconv.Atoi(portA)
	pb, errB := strconv.Atoi(portB)
	if errA != nil || errB != nil || pa != pb || pa == 0 {
		return false // port 0 picks a different free port each time
	}

	return hostA == hostB || anyAddress(hostA) || anyAddress(hostB)
}

// anyAddress reports whether host, in a listen address, means every address.
func anyAddress(host string) bool {
	addr, err := netip.ParseAddr(host)

	return host == "" || (err == nil && addr.IsUnspecified())
}

// resolvePublicHost returns the IPv4 address that PASV replies announce.
// The reply (RFC 959 "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)") has
// room for IPv4 only, so IPv6 addresses are refused.
func resolvePublicHost(host string, r resolver) (string, error) {
	if host == "" {
		return "", nil
	}

	if addr, err := netip.ParseAddr(host); err == nil {
		if !addr.Is4() {
			return "", fmt.Errorf("%q is an IPv6 address, but PASV replies carry only IPv4: "+
				"give an IPv4 address or a host name that resolves to one", host)
		}

		return addr.String(), nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()

	addrs, err := r.LookupNetIP(ctx, "ip4", host)
	if err != nil {
		return "", err
	}

	for _, a := range addrs {
		if a = a.Unmap(); a.Is4() {
			return a.String(), nil
		}
	}

	return "", fmt.Errorf("%q has no IPv4 address, and PASV replies carry only IPv4", host)
}

func checkPassivePorts(ports []int) error {
	if len(ports) != 2 {
		return fmt.Errorf("want two ports [first, last] such as [50000, 50100], got %d", len(ports))
	}

	for _, port := range ports {
		if port < 1 || port > 65535 {
			return fmt.Errorf("port %d is outside 1-65535", port)
		}
	}

	if ports[0] > ports[1] {
		return fmt.Errorf("%d > %d: range out of order", ports[0], ports[1])
	}

	return nil
}

// checkEnum reports a value of an enum key (see enum.go) that names
// nothing, which only a Config built in code can hold: the file's and the
// environment's are refused as they are decoded.
func checkEnum(p *problems, key string, v encoding.TextMarshaler) {
	if _, err := v.MarshalText(); err != nil {
		p.add(key, err)
	}
}

// checkLogFile accepts a file path whose folder exists; the file itself is
// created when wharf starts. name is the key, such as "log.file".
func checkLogFile(p *problems, name, path string) {
	key := fmt.Sprintf("%s %q", name, path)

	dir := filepath.Dir(path)
	if info, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		p.addf(key, "folder %q does not exist", dir)
	} else if err != nil {
		p.add(key, err)
	} else if !info.IsDir() {
		p.addf(key, "%q is not a folder", dir)
	}

	if info, err := os.Stat(path); err == nil && info.IsDir() {
		p.addf(key, "is a directory, not a file")
	}
}

// checkDir accepts the path of an existing directory, or with create (the
// key create_missing) of one wharf can make: its nearest existing parent is a
// directory. key names it. It reports whether the directory is there or will be.
func checkDir(p *problems, key, path string, create bool) bool {
	if path == "" {
		p.addf(key, "required")

		return false
	}

	info, err := os.Stat(path)

	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		if why := blockedFolder(path); why != "" {
			p.addf(fmt.Sprintf("%s %q", key, path), "can't be created (create_missing): %s", why)

			return false
		}

		return true
	case errors.Is(err, fs.ErrNotExist):
		p.addf(fmt.Sprintf("%s %q", key, path), "no such directory")
	case err != nil:
		p.add(key, err)
	case !info.IsDir():
		p.addf(fmt.Sprintf("%s %q", key, path), "not a directory")
	default:
		return true
	}

	return false
}

// check validates [anonymous] and reads login_message_file into
// LoginMessageText. Nothing in it is used, so nothing is checked, when
// anonymous logins are disabled. With s3, root is a key prefix that need not
// exist, and the drop box is refused: it relies on the local disk.
// world_readable_only is a bool, always valid: with s3 it has no effect.
// With create (create_missing), root and upload_dir need not exist yet.
func (a *Anonymous) check(p *problems, s3, create bool) {
	a.LoginMessageText = ""
	if !a.Enabled {
		return
	}

	if a.LoginMessageFile != "" {
		a.LoginMessageText = readMessage(p, "anonymous.login_message_file", a.LoginMessageFile, 230)
	}

	switch {
	case s3:
		if err := checkPrefix(a.Root); err != nil {
			p.add("anonymous.root", err)
		}
		if a.UploadDir != "" {
			p.addf("anonymous.upload_dir", `the drop box needs storage.backend = "disk"`)
		}
	default:
		rootOK := checkDir(p, "anonymous.root", a.Root, create)
		if a.UploadDir != "" {
			checkUploadDir(p, a.Root, a.UploadDir, rootOK, create)
		}
	}

	checkSize(p, "anonymous.max_upload_size", a.MaxUploadSize)
	checkSize(p, "anonymous.upload_quota", a.UploadQuota)
	checkSize(p, "anonymous.upload_bytes_per_hour", a.UploadBytesPerHour)
	checkCount(p, "anonymous.upload_max_files", a.UploadMaxFiles)
	checkCount(p, "anonymous.upload_max_depth", a.UploadMaxDepth)
	checkCount(p, "anonymous.upload_rate", a.UploadRate)
}

// checkCount refuses a negative limit; 0 is no limit.
func checkCount(p *problems, key string, n int) {
	if n < 0 {
		p.addf(key, "must not be negative (0 is no limit), got %d", n)
	}
}

// maxMessage is the most bytes a banner_file or login_message_file may hold.
const maxMessage = 4 << 10

// readMessage reads the text file at path, named by key, that becomes the
// text of a reply with code (220, 230), and returns it with its line ends
// made "\n" and its trailing newlines dropped. It reports a problem and
// returns "" if the file can't be read, is empty or larger than maxMessage,
// holds a NUL or a CR that does not end a line, or has a line that starts like
// a reply code: three digits then a space, "-" or nothing. The engine writes
// each line after "220-", but STAT shows the banner as it is, and a line such
// as "220 x" there would end or break the reply for the client (RFC 959, 4.2:
// a line that begins with three digits must be padded).
func readMessage(p *problems, key, path string, code int) string {
	key = fmt.Sprintf("%s %q", key, path)

	data, err := readRegularMax(path, maxMessage)
	if err != nil {
		p.add(key, err)

		return ""
	}

	text := strings.TrimRight(strings.ReplaceAll(string(data), "\r\n", "\n"), "\n")
	if text == "" {
		p.addf(key, "is empty: leave the key out (or \"\") for the default text")

		return ""
	}

	n := 0
	for line := range strings.Lines(text) {
		n++
		if err := checkMessageLine(strings.TrimSuffix(line, "\n"), code); err != nil {
			p.addf(key, "line %d: %w", n, err)

			return ""
		}
	}

	return text
}

// checkMessageLine accepts a line of a reply's text (see readMessage).
func checkMessageLine(line string, code int) error {
	switch {
	case strings.ContainsRune(line, 0):
		return errors.New("holds a NUL byte")
	case strings.ContainsRune(line, '\r'):
		return errors.New("holds a CR that does not end the line (lines end with LF or CR LF)")
	case startsLikeReply(line):
		return fmt.Errorf("%q starts like a reply code (three digits then a space, \"-\" or nothing), "+
			"which would end or break the %d reply: indent it or reword it", line, code)
	default:
		return nil
	}
}

// startsLikeReply reports whether line begins as a reply line of RFC 959
// does: three digits, then a space, "-" or the end of the line.
func startsLikeReply(line string) bool {
	if len(line) < 3 || strings.IndexFunc(line[:3], func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return false
	}

	return len(line) == 3 || line[3] == ' ' || line[3] == '-'
}

// check validates [listing]: the symlinks mode (only a Config built in code
// can hold a bad one), every hide and deny pattern, message_file and
// cache_ttl.
func (l Listing) check(p *problems) {
	checkEnum(p, "listing.symlinks", l.Symlinks)

	if l.CacheTTL.Duration < 0 {
		p.addf("listing.cache_ttl", `must not be negative ("0s" keeps no listing), got %s`, l.CacheTTL)
	}

	checkPatterns(p, "listing.hide", l.Hide)
	checkPatterns(p, "listing.deny", l.Deny)

	switch name := l.MessageFile; {
	case strings.Contains(name, "/"):
		p.addf("listing.message_file", "%q: a file name, not a path (no \"/\"): it is looked for in each folder", name)
	case name == "." || name == "..":
		p.addf("listing.message_file", "%q: a file name, not a folder", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		p.addf("listing.message_file", "%q: has a control character", name)
	}
}

// checkPatterns accepts name patterns in path.Match's syntax, each reported
// by key and index (listing.hide[2]). A pattern matches one name, so a "/"
// would make it match nothing.
func checkPatterns(p *problems, key string, patterns []string) {
	for i, pattern := range patterns {
		k := fmt.Sprintf("%s[%d]", key, i)

		if pattern == "" {
			p.addf(k, "empty pattern")

			continue
		}

		if strings.Contains(pattern, "/") {
			p.addf(k, "%q: a pattern matches one name, so it can't hold \"/\"", pattern)

			continue
		}

		if _, err := path.Match(pattern, ""); err != nil {
			p.addf(k, "%q: %w (the syntax is Go's path.Match: * ? [a-z] [^a-z] and \\ to escape)", pattern, err)
		}
	}
}

// checkPrefix accepts a key prefix that names a home in a bucket with s3,
// such as "/pub": not empty, and without a ".." segment.
func checkPrefix(prefix string) error {
	switch {
	case prefix == "":
		return errors.New(`required (with storage.backend = "s3", a key prefix such as "/pub")`)
	case slices.Contains(strings.FieldsFunc(prefix, isSlash), ".."):
		return fmt.Errorf(`%q: must not contain ".."`, prefix)
	default:
		return nil
	}
}

// bucketName is what S3 accepts as a bucket name: 3 to 63 lower-case
// letters, digits, dots and hyphens, starting and ending with a letter or digit.
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// check validates [storage]. Its other keys are not used, so not checked,
// when the backend is "disk".
func (s Storage) check(p *problems) {
	checkEnum(p, "storage.backend", s.Backend)

	if !s.S3() {
		return
	}

	switch {
	case s.Bucket == "":
		p.addf("storage.bucket", `required when storage.backend is "s3"`)
	case !bucketName.MatchString(s.Bucket):
		p.addf("storage.bucket", "%q is not a bucket name (3-63 lower-case letters, digits, dots and hyphens)", s.Bucket)
	}

	if s.Endpoint != "" {
		if err := checkEndpoint(s.Endpoint); err != nil {
			p.add("storage.endpoint", err)
		}
	}

	if slices.Contains(strings.Split(s.Prefix, "/"), "..") {
		p.addf("storage.prefix", `%q: must not contain ".."`, s.Prefix)
	}

	if m := s.UploadMemory.Bytes; m != 0 && m < 16<<20 {
		p.addf("storage.upload_memory", "%s: want 0 (no bound) or at least 16MiB (a few uploads of 5 MiB parts)",
			s.UploadMemory)
	}

	if a := s.AbandonedUploadAge.Duration; a != 0 && a < time.Second {
		p.addf("storage.abandoned_upload_age", "%s: want 0 (never) or at least 1s", a)
	}

	switch {
	case s.AccessKey != "" && s.SecretKey == "":
		p.addf("storage.secret_key", "required when storage.access_key is set")
	case s.AccessKey == "" && s.SecretKey != "":
		p.addf("storage.access_key", "required when storage.secret_key is set")
	}

	if s.StartupTimeout.Duration < 0 {
		p.addf("storage.startup_timeout", "must not be negative, got %s", s.StartupTimeout)
	}
}

// checkEndpoint accepts the URL of an S3-compatible service, with its
// scheme: "http://127.0.0.1:9000", "https://s3.example.com".
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf(`%q is not a URL such as "http://127.0.0.1:9000": %w`, endpoint, err)
	}

	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf(`%q: want an http or https URL with its scheme, such as "http://127.0.0.1:9000"`, endpoint)
	case u.Host == "":
		return fmt.Errorf("%q: no host", endpoint)
	case u.User != nil:
		return fmt.Errorf("%q: put credentials in storage.access_key and storage.secret_key, not in the URL", endpoint)
	case strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: want the service's address only, without a path (the bucket is storage.bucket)", endpoint)
	}

	return nil
}

// checkUploadDir accepts a folder written relative to root, without "..",
// that exists under root, or with create (create_missing) that wharf will
// make there. The check opens root with os.Root, as vfs does, so a symbolic
// link leading out of root is refused too.
func checkUploadDir(p *problems, root, dir string, rootOK, create bool) {
	key := fmt.Sprintf("anonymous.upload_dir %q", dir)

	switch {
	case filepath.IsAbs(dir):
		p.addf(key, `must be relative to anonymous.root, like "incoming"`)

		return
	case slices.Contains(strings.FieldsFunc(dir, isSlash), ".."):
		p.addf(key, `must not contain "..": it names a folder under anonymous.root`)

		return
	case !rootOK:
		return // reported against anonymous.root
	case create && !exists(root):
		return // made at start, with upload_dir in it
	}

	r, err := os.OpenRoot(root)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return // a root the user wharf runs as can't read: see UnusableFolders
	case err != nil:
		p.add(key, err)

		return
	}
	defer r.Close()

	info, err := r.Stat(dir)

	switch {
	case errors.Is(err, fs.ErrPermission):
		// See UnusableFolders.
	case errors.Is(err, fs.ErrNotExist) && create && !exists(filepath.Join(root, dir)):
		// Made at start, unless something is in the way.
		if why := blockedFolder(filepath.Join(root, dir)); why != "" {
			p.addf(key, "can't be created (create_missing): %s", why)
		}
	case errors.Is(err, fs.ErrNotExist):
		p.addf(key, "no such directory under anonymous.root %q", root)
	case err != nil && exists(filepath.Join(root, dir)):
		p.addf(key, "leads out of anonymous.root %q (through a symbolic link?), where uploads can't follow: %w", root, err)
	case err != nil:
		p.addf(key, "under anonymous.root %q: %w", root, err)
	case !info.IsDir():
		p.addf(key, "not a directory")
	}
}

// blockedFolder reports why path, which does not exist, can't be made: a
// name on the way to it that is there but is no folder (a symbolic link to
// nothing: a file in the way makes Stat fail otherwise). It returns "" when
// nothing is in the way.
func blockedFolder(path string) string {
	for dir := path; ; dir = filepath.Dir(dir) {
		if info, err := os.Lstat(dir); err == nil {
			if _, err := os.Stat(dir); err != nil {
				return fmt.Sprintf("%q is a symbolic link to nothing (%s)", dir, statError(err))
			}

			if !info.IsDir() && info.Mode()&fs.ModeSymlink == 0 {
				return fmt.Sprintf("%q is not a directory", dir)
			}

			return ""
		}

		if filepath.Dir(dir) == dir {
			return ""
		}
	}
}

// statError is err without the path that *fs.PathError repeats.
func statError(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}

	return err
}

// exists reports whether path can be reached from the working directory.
func exists(path string) bool {
	_, err := os.Stat(path)

	return err == nil
}

func isSlash(r rune) bool { return r == '/' || r == '\\' }

// checkSize refuses a negative size, which decoding already does for the
// file; Validate can be given a Config built in code.
func checkSize(p *problems, key string, s Size) {
	if s.Bytes < 0 {
		p.addf(key, "must not be negative, got %d", s.Bytes)
	}
}

func (b Ban) check(p *problems) {
	// Checked whatever max_failures is: max_clients_per_ip counts by it too.
	if b.IPv6Prefix < 1 || b.IPv6Prefix > 128 {
		p.addf("ban.ipv6_prefix", "must be from 1 to 128 (64 counts a /64, what one host usually gets; "+
			"128 counts each address), got %d", b.IPv6Prefix)
	}

	checkNetworks(p, "ban.allow", b.Allow)

	if b.MaxFailures < 0 {
		p.addf("ban.max_failures", "must not be negative (0 turns banning off), got %d", b.MaxFailures)
	}

	if b.MaxFailures <= 0 {
		return // banning is off: window and duration are not used
	}

	if b.Window.Duration <= 0 {
		p.addf("ban.window", "must be more than 0 when ban.max_failures is set, got %s", b.Window)
	}
	if b.Duration.Duration <= 0 {
		p.addf("ban.duration", "must be more than 0 when ban.max_failures is set, got %s", b.Duration)
	}
}

// check validates [admin] and reads token_file into Token. Nothing in it is
// used, so nothing is checked, when the listener is off. listen is the FTP
// listen address, which the admin listener must not share.
func (a *Admin) check(p *problems, listen string) {
	a.Token = ""
	if a.Listen == "" {
		return
	}

	if err := checkListen(a.Listen); err != nil {
		p.add("admin.listen", err)
	} else if sameListener(a.Listen, listen) {
		p.addf("admin.listen", "%q overlaps listen %q: the admin listener needs a port of its own", a.Listen, listen)
	}

	if a.TokenFile != "" {
		a.Token = readToken(p, a.TokenFile)
	}

	for i, h := range a.Hosts {
		if err := checkHostName(h); err != nil {
			p.add(fmt.Sprintf("admin.hosts[%d]", i), err)
		}
	}
}

// minToken is the fewest characters an admin token may have: 16 random
// characters of hex are 64 bits, beyond guessing over HTTP.
const minToken = 16

// maxTokenFile is the most bytes admin.token_file may hold.
const maxTokenFile = 4 << 10

// readToken reads the admin token from path, without the white space around
// it. It reports a problem and returns "" if the file can't be read, or the
// token is shorter than minToken or holds what an Authorization header
// can't carry as it is (a space, a control or a non-ASCII character).
func readToken(p *problems, path string) string {
	key := fmt.Sprintf("admin.token_file %q", path)

	data, err := readRegularMax(path, maxTokenFile)
	if err != nil {
		p.add(key, err)

		return ""
	}

	token := strings.TrimSpace(string(data))

	switch {
	case token == "":
		p.addf(key, "is empty: write a token of at least %d characters in it, such as the output of "+
			"`openssl rand -hex 32`, or leave admin.token_file out", minToken)
	case strings.IndexFunc(token, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
		p.addf(key, "the token holds a space, a control or a non-ASCII character, which an Authorization "+
			"header can't carry: use letters, digits and punctuation, such as the output of `openssl rand -hex 32`")
	case len(token) < minToken:
		p.addf(key, "the token has %d characters, fewer than %d: use a longer one, such as the output of "+
			"`openssl rand -hex 32`", len(token), minToken)
	default:
		return token
	}

	return ""
}

// hostName is a DNS name as a Host header carries it, optionally ending in a dot.
var hostName = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$`)

// checkHostName accepts an item of admin.hosts: a host name, without a
// port. An IP address is accepted too, though the Host check lets every
// address in anyway.
func checkHostName(h string) error {
	_, ipErr := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	name, port, portErr := net.SplitHostPort(h)
	if _, err := strconv.Atoi(port); err != nil {
		portErr = err
	}

	switch {
	case h == "":
		return errors.New("empty name")
	case ipErr == nil:
		return nil
	case portErr == nil && hostName.MatchString(name):
		return fmt.Errorf("%q: write the name without a port (any port is accepted)", h)
	case !hostName.MatchString(h):
		return fmt.Errorf("%q is not a host name (letters, digits, \"-\" and \".\")", h)
	default:
		return nil
	}
}

func (t TLS) check(p *problems) {
	checkEnum(p, "tls.mode", t.Mode)

	if t.Mode.Is(server.TLSOff) {
		return // the files are not used, so not checked
	}

	cert := readPEM(p, "tls.cert_file", t.CertFile, t.Mode)
	key := readPEM(p, "tls.key_file", t.KeyFile, t.Mode)

	if cert == nil || key == nil {
		return
	}

	// What tls.LoadX509KeyPair does, after reading each file on its own so a
	// missing file is reported against its key.
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		p.addf("tls", "cert_file %q with key_file %q: %w", t.CertFile, t.KeyFile, err)
	}
}

// readPEM reads a TLS file named by key; it reports a problem and returns nil
// if it can't.
func readPEM(p *problems, key, path string, mode TLSMode) []byte {
	if path == "" {
		p.addf(key, "required when tls.mode is %q", mode)

		return nil
	}

	data, err := readRegular(path)
	if err != nil {
		p.add(key, err)

		return nil
	}

	return data
}

// readRegular reads a regular file, refusing devices and pipes such as
// /dev/zero that would never end.
func readRegular(path string) ([]byte, error) {
	return readRegularMax(path, -1)
}

// readRegularMax reads a regular file like readRegular, and refuses one
// larger than limit bytes unless limit is negative.
func readRegularMax(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	info, err := f.Stat()
	if err != nil {
		return nil, err
	}

	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%q is not a regular file", path)
	}

	if limit < 0 {
		return io.ReadAll(f)
	}

	// The size may change while the file is read: read one byte past limit to tell.
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}

	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}

	return data, nil
}

// checkUsers validates [[users]], from the main file and from users_file.
// An entry is named by its index in its own file, and its problems by that
// file. With s3, homes are key prefixes that need not exist. tlsMode is
// tls.mode, against which each user's tls is checked. With create
// (create_missing), homes need not exist yet. pub, unless nil, is the
// anonymous tree that no writable account's home may lie in.
func checkUsers(p *problems, users []User, s3 bool, tlsMode TLSMode, create bool, pub *publicTree) {
	type place struct {
		file  string // users_file, or "" for the main file
		index int
	}

	first := map[string]place{} // name -> its first entry
	count := map[string]int{}   // entries so far in each file

	for _, u := range users {
		at := place{file: u.file, index: count[u.file]}
		count[u.file]++

		// An entry from users_file collects its problems apart, named by that file.
		q := p
		if u.file != "" {
			q = &problems{file: u.file}
		}

		label := itemLabel("users", at.index, u.Name)
		prev, dup := first[u.Name]

		switch {
		case u.Name == "":
			q.addf(label+": name", "required")
		case strings.ContainsFunc(u.Name, unicode.IsControl):
			q.addf(label+": name", "has a control character")
		case auth.IsAnonymousName(u.Name):
			q.addf(label, "name is reserved for anonymous logins (see [anonymous])")
		case dup && prev.file == at.file:
			q.addf(label, "duplicate name (also users[%d])", prev.index)
		case dup:
			q.addf(label, "duplicate name (also users[%d] in %s)", prev.index, p.describe(prev.file))
		default:
			first[u.Name] = at
		}

		if err := auth.CheckHash(u.Password); err != nil {
			q.add(label+": password", err)
		}

		homeOK := false
		if s3 {
			if err := checkPrefix(u.Home); err != nil {
				q.add(label+": home", err)
			} else {
				homeOK = true
			}
		} else {
			homeOK = checkDir(q, label+": home", u.Home, create)
		}

		if homeOK && pub != nil {
			pub.exposes(q, fmt.Sprintf("%s: home %q", label, u.Home), u)
		}

		checkEnum(q, label+": access", u.Access)

		// A rule that contradicts tls.mode is refused rather than ignored:
		// the operator asked for something the server can't do.
		_, err := u.TLS.MarshalText() // fails only for a Config built in code
		switch rule := auth.TLSRule(u.TLS); {
		case err != nil:
			q.add(label+": tls", err)
		case rule == auth.TLSRequired && tlsMode.Is(server.TLSOff):
			q.addf(label+": tls", `"required", but tls.mode is "off": this account could never log in`)
		case rule == auth.TLSOptional && tlsMode.Is(server.TLSRequired):
			q.addf(label+": tls", `"optional", but tls.mode is "required", which applies to every account`)
		}

		if u.SessionDownload != nil {
			checkSize(q, label+": session_download", *u.SessionDownload)
		}
		if u.SessionUpload != nil {
			checkSize(q, label+": session_upload", *u.SessionUpload)
		}

		// overwrite loosens write-only, and read-write replaces files anyway;
		// on a read-only account (an empty access is one) it can't be meant.
		if u.Overwrite && u.AccessLevel() == auth.ReadOnly {
			q.addf(label+": overwrite", `true, but access is "read-only": this account can't write at all`)
		}

		if q != p {
			p.errs = append(p.errs, q.errs...)
		}
	}
}

// describe names a file of [[users]] in a message: users_file's path, or
// for "" the main file.
func (p *problems) describe(file string) string {
	switch {
	case file != "":
		return file
	case p.file != "":
		return p.file
	default:
		return "the configuration"
	}
}

// readUsersFile appends the [[users]] tables of users_file to c.Users. The
// file holds nothing else: any other key is a problem named by that file.
// A syntax error is returned alone, like the main file's.
func readUsersFile(c *Config, p *problems) error {
	data, err := readRegular(c.UsersFile)
	if err != nil {
		p.add("users_file", err)

		return nil
	}

	var f struct {
		Users []User `toml:"users"`
	}

	fp := &problems{file: c.UsersFile}
	if err := decode(data, &f, fp); err != nil {
		return err
	}

	p.errs = append(p.errs, fp.errs...)

	for i := range f.Users {
		f.Users[i].file = c.UsersFile
	}

	c.Users = append(c.Users, f.Users...)

	return nil
}

// problems collects what is wrong with a configuration, one line each.
type problems struct {
	file string // starts every line unless empty, or another source is known
	errs []error
	keys map[string]bool // where + key with a problem already: one each is enough

	// origin maps a key to the variable or flag that set it, such as
	// "WHARF_LISTEN" or "-listen": its problems name that instead of file.
	origin map[string]string
}

// setBy records that the variable or flag name set key.
func (p *problems) setBy(key, name string) {
	if p.origin == nil {
		p.origin = map[string]string{}
	}

	p.origin[key] = name
}

// source names where key's value came from: the variable or flag that set
// it, else the file. key may carry more after the key itself, as in
// `anonymous.root "pub"`, `users_file: ...` or `listing.hide[2]`.
func (p *problems) source(key string) string {
	for k, name := range p.origin {
		if key == k || strings.HasPrefix(key, k+" ") || strings.HasPrefix(key, k+":") || strings.HasPrefix(key, k+"[") {
			return name
		}
	}

	return p.file
}

// add reports err against key, unless key already has a problem (a value
// that failed to decode would otherwise be reported again by validation).
// The line starts with where the value came from (see source).
func (p *problems) add(key string, err error) {
	where := p.source(key)
	if !p.first(where, key) {
		return
	}

	if where != "" {
		where += ": "
	}

	p.errs = append(p.errs, fmt.Errorf("%s%s: %w", where, key, err))
}

func (p *problems) addf(key, format string, args ...any) {
	p.add(key, fmt.Errorf(format, args...))
}

// addBare reports a value that the variable or flag name could not set for
// key: the line names only name, since err starts with the value given.
func (p *problems) addBare(name, key string, err error) {
	if p.first(name, key) {
		p.errs = append(p.errs, fmt.Errorf("%s: %w", name, err))
	}
}

// first reports whether key, in where, has no problem yet, and marks it.
func (p *problems) first(where, key string) bool {
	id := where + "\x00" + key
	if p.keys[id] {
		return false
	}

	if p.keys == nil {
		p.keys = map[string]bool{}
	}
	p.keys[id] = true

	return true
}

// unknown reports a key the schema doesn't know, inside item (an entry of
// an array of tables) unless item is empty.
func (p *problems) unknown(item, key string) {
	if item != "" {
		item += ": "
	}

	p.errs = append(p.errs, fmt.Errorf("%s%sunknown key %q", p.prefix(), item, key))
}

func (p *problems) prefix() string {
	if p.file == "" {
		return ""
	}

	return p.file + ": "
}

// err returns every problem joined, or nil.
func (p *problems) err() error {
	return errors.Join(p.errs...)
}
