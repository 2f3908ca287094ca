package server

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/spf13/afero"
)

// TLSMode says whether and how the control and data connections use TLS (RFC 4217).
type TLSMode int

// The TLS modes an operator can choose.
const (
	// TLSOff offers no TLS: AUTH TLS is refused.
	TLSOff TLSMode = iota
	// TLSExplicit allows a client to upgrade with AUTH TLS. Password accounts
	// must (auth.Accounts.NeedsTLS), anonymous need not.
	TLSExplicit
	// TLSRequired refuses any login, anonymous included, on a control connection without TLS,
	// and any transfer on a data connection without it.
	TLSRequired
	// TLSImplicit speaks TLS from the first byte on the control port, and
	// protects data connections until the client sends PROT C.
	TLSImplicit
)

// String returns the name used in the configuration file.
func (m TLSMode) String() string {
	switch m {
	case TLSOff:
		return "off"
	case TLSExplicit:
		return "explicit"
	case TLSRequired:
		return "required"
	case TLSImplicit:
		return "implicit"
	default:
		return fmt.Sprintf("TLSMode(%d)", int(m))
	}
}

// Root is the filesystem of one session, rooted at its home: virtual paths
// ("/", "/pub/a.iso") name what it serves. Close releases it when the session
// and its last transfer have ended.
type Root interface {
	afero.Fs
	Close() error
}

// ListingKeyer is a Root whose folders list the same for every home and
// account that reaches them, as a key prefix of an object store does.
// ListingKey names the listing of folder dir, an absolute virtual path of
// this root (two roots give one folder the same name): the listing cache
// then keeps one copy of it, a crowd reads it once whatever their homes, and
// a change made through any session forgets it for all.
type ListingKeyer interface {
	ListingKey(dir string) string
}

// Storage opens the Root of a session whose home is home (a folder on disk,
// or a key prefix in an object store). atomic asks for atomic uploads.
type Storage func(home string, atomic bool) (Root, error)

// SymlinkMode is how listings show a symbolic link.
type SymlinkMode int

const (
	// SymlinksAsLinks lists a link whose target the session may see as a link
	// ("name -> target", MLSD type=OS.unix=slink:target); other links are not
	// listed at all. Downloads and CWD through a link still work.
	SymlinksAsLinks SymlinkMode = iota
	// SymlinksAsTargets lists a link as what it points to, under its own
	// name, for clients that cannot handle links (rclone).
	SymlinksAsTargets
)

// String returns the name used in the configuration file.
func (m SymlinkMode) String() string {
	switch m {
	case SymlinksAsLinks:
		return "links"
	case SymlinksAsTargets:
		return "targets"
	default:
		return fmt.Sprintf("SymlinkMode(%d)", int(m))
	}
}

// Listing is how listings show the tree.
type Listing struct {
	// Symlinks is how symbolic links are listed.
	Symlinks SymlinkMode
	// Hide are name patterns (path.Match, on one path element) left out of
	// listings but still served by their exact name.
	Hide []string
	// Deny are name patterns neither listed, served nor created by uploads
	// (550 as if missing), on any path element: rsync's temporary names by
	// default.
	Deny []string
	// MessageFile is the name of the file whose lines precede the 250 reply to
	// a CWD into its folder (".message"); "" shows none.
	MessageFile string
	// Recursive allows LIST -R.
	Recursive bool
	// CacheTTL is how long a folder's listing is served again once read:
	// the longest a change made elsewhere (by another wharf on the same
	// object store, or on disk by a file growing) stays unseen. A change made
	// through this server is seen at once. 0 means DefaultListingCacheTTL; a
	// negative value keeps no listing (listings asked for at once still share
	// one read).
	CacheTTL time.Duration
}

// cacheTTL is CacheTTL with its default, 0 for none.
func (l Listing) cacheTTL() time.Duration {
	switch {
	case l.CacheTTL == 0:
		return DefaultListingCacheTTL
	case l.CacheTTL < 0:
		return 0
	}

	return l.CacheTTL
}

// Options are the server's settings, already validated by the caller.
type Options struct {
	// Listen is the control connection's address, host:port.
	Listen string
	// PublicHost is the IPv4 address announced in PASV replies; empty means the
	// control connection's local address.
	PublicHost string
	// PassivePortStart and PassivePortEnd bound the passive data ports, inclusive.
	PassivePortStart, PassivePortEnd int
	// ActiveMode allows PORT and EPRT.
	ActiveMode bool
	// IdleTimeout closes a session that sent no command for this long (a running transfer is not idle).
	IdleTimeout time.Duration
	// MaxClients and MaxClientsPerIP cap the control connections, in all and per client address.
	MaxClients, MaxClientsPerIP int
	// Banner is the 220 greeting, one line or several (banner_file).
	Banner string
	// LoginMessage is the text of an anonymous login's 230 reply, one line or
	// several; "" is wharf's own.
	LoginMessage string
	// Listing is how listings show the tree (the [listing] table).
	Listing Listing
	// ASCIIConversion converts line endings in TYPE A transfers as RFC 959 says.
	ASCIIConversion bool
	// AtomicUploads makes a fresh STOR write a hidden temporary file renamed into place on success.
	AtomicUploads bool
	// NoUploadSync lets an upload's 226 go out before its data is on the
	// disk (vfs.Options.NoSync); the zero value waits for it.
	NoUploadSync bool
	// TLSMode, TLSCertFile and TLSKeyFile configure FTPS.
	TLSMode                 TLSMode
	TLSCertFile, TLSKeyFile string
	// TransferLog is the path of an xferlog file; empty means none.
	TransferLog string
	// DataConnectionTimeout bounds how long a transfer waits for its data connection. Zero means 30s.
	DataConnectionTimeout time.Duration
	// DataTimeout cuts a transfer whose data connection moved no byte for this long; 0 means never.
	DataTimeout time.Duration
	// Bandwidth caps transfers; the zero value is unlimited.
	Bandwidth Bandwidth
	// Ban is the brute-force defence; the zero value is off.
	Ban BanOptions
	// MaxListEntries caps the entries of one listing; 0 means no cap.
	MaxListEntries int
	// LoginTimeout closes a session not logged in within it; 0 means never.
	LoginTimeout time.Duration
	// GreetingTimeout bounds a new connection's greeting and implicit-TLS
	// handshake; 0 means 10s.
	GreetingTimeout time.Duration
	// ReturnMemoryAfter gives the heap's free memory back to the system
	// once no connection arrived for this long, spaced so that it takes at
	// most a tenth of a core (memory.go); 0 never does.
	ReturnMemoryAfter time.Duration
	// Storage opens each session's files; nil means the local disk, confined
	// with os.Root (vfs.Open). The anonymous drop box needs the local disk.
	Storage Storage

	// MaxListingMemory bounds the memory that listings in flight hold, in
	// bytes, all sessions together (max_listing_memory); 0 means no bound.
	MaxListingMemory int64
	// RequireSessionReuse refuses a TLS data connection that does not resume
	// the control connection's TLS session (vsftpd's require_ssl_reuse).
	RequireSessionReuse bool
	// DropBox bounds the anonymous drop box (upload_dir) as a whole and per
	// client address; the zero value bounds nothing.
	DropBox DropBoxLimits
	// IPv6Prefix is the prefix length by which IPv6 client addresses are
	// counted, for bans and max_clients_per_ip ([ban] ipv6_prefix); 0 or 128
	// counts each address.
	IPv6Prefix int
	// AccessAllow and AccessDeny are the client networks admitted and refused
	// before the greeting (421): a client in AccessDeny is refused; with
	// AccessAllow set, so is every client outside it.
	AccessAllow, AccessDeny []netip.Prefix
	// UploadResumeWindow is how long an interrupted upload of an account stays
	// resumable (REST + STOR, APPE) after its last byte before its hidden
	// part is removed; 0 discards interrupted uploads at once, as before.
	// Only atomic uploads on disk resume, and never anonymous ones (resume.go).
	UploadResumeWindow time.Duration
	// ProxyTrusted are the load balancers whose connections, control and
	// passive data, start with a PROXY protocol header naming the client
	// ([proxy_protocol] trusted; see proxy.go); empty means none.
	ProxyTrusted []netip.Prefix
	// Snapshots are the folders of the anonymous tree that a mirror's sync
	// flips between copies: each anonymous session keeps the copy it first
	// saw (snapshots.go). Only on the local disk.
	Snapshots Snapshots
	// HTTP serves the anonymous tree over HTTP or HTTPS ([http], http.go);
	// the zero value serves nothing.
	HTTP HTTPOptions
	// Hash is how HASH, XSHA256, XSHA512, XSHA1 and XMD5 find digests ([hash], hash.go).
	Hash Hash
	// Manifest serves /ls-lR.gz and /manifest.json ([manifest], manifest.go).
	Manifest Manifest
}

// DropBoxLimits bound the anonymous drop box. A zero field is no limit.
type DropBoxLimits struct {
	// Quota is the total size of upload_dir, in bytes (upload_quota).
	Quota int64
	// MaxFiles is the number of files and folders in upload_dir (upload_max_files).
	MaxFiles int
	// MaxDepth is how deep folders may nest below upload_dir (upload_max_depth).
	MaxDepth int
	// FilesPerMinute and BytesPerHour bound one client address (upload_rate,
	// upload_bytes_per_hour).
	FilesPerMinute int
	BytesPerHour   int64
}
