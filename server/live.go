package server

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"wharf/auth"
)

// SessionSnapshot is one live session, for the admin listener's /sessions.
type SessionSnapshot struct {
	ID       uint32
	User     string // "" before login
	ClientIP string
	Since    time.Time
	Command  string // the last command's verb: never its argument, so PASS never shows
	TLS      bool   // the control connection is TLS
	DataTLS  bool   // data connections are TLS (PROT P)
	Transfer *TransferSnapshot
}

// TransferSnapshot is a running file transfer.
type TransferSnapshot struct {
	Path      string
	Direction string // "download" or "upload"
	Bytes     int64  // moved so far
	Size      int64  // total for downloads, 0 for uploads
	Started   time.Time
}

// Sessions returns the live sessions, oldest first.
func (s *Server) Sessions() []SessionSnapshot {
	s.mu.Lock()
	infos := make([]*sessionInfo, 0, len(s.sessions))
	for _, si := range s.sessions {
		infos = append(infos, si)
	}
	s.mu.Unlock()

	out := make([]SessionSnapshot, 0, len(infos))
	for _, si := range infos {
		snap := SessionSnapshot{
			ID:       si.cc.ID(),
			User:     si.acct().Name,
			ClientIP: si.ip(),
			Since:    si.since,
			Command:  si.ctl.verb(),
			TLS:      si.ctl.isSecure(),
			DataTLS:  si.ctl.dataProtected(),
		}

		if t := si.current.Load(); t != nil {
			snap.Transfer = &TransferSnapshot{
				Path:      t.path,
				Direction: t.direction,
				Bytes:     t.bytes.Load(),
				Size:      t.size,
				Started:   t.start,
			}
		}

		out = append(out, snap)
	}

	slices.SortFunc(out, func(a, b SessionSnapshot) int { return cmp.Compare(a.ID, b.ID) })

	return out
}

// Reload is what a configuration reload may change while sessions run.
// New values apply to new logins, new transfers and new TLS handshakes.
type Reload struct {
	Accounts  *auth.Accounts
	Bandwidth Bandwidth
	Ban       BanOptions
	// TLSCertFile and TLSKeyFile are loaded again when TLS is on.
	TLSCertFile, TLSKeyFile string
	// PublicHost is the IPv4 address PASV replies announce ("" = the local address).
	PublicHost string
	// Banner and LoginMessage are the 220 greeting and the anonymous 230 text
	// (banner_file and login_message_file read again).
	Banner, LoginMessage string
	// Snapshots replace the snapshot folders for sessions from now on;
	// sessions already open keep the copies they hold.
	Snapshots Snapshots
}

// Reload applies r, or changes nothing and returns an error if the new
// certificate cannot be loaded.
func (s *Server) Reload(r Reload) error {
	var cert *tls.Certificate
	if s.tls != nil || s.opts.HTTP.TLS {
		c, err := tls.LoadX509KeyPair(r.TLSCertFile, r.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("load TLS certificate %s and key %s: %w", r.TLSCertFile, r.TLSKeyFile, err)
		}

		cert = &c
	}

	if cert != nil {
		s.cert.Store(cert)
	}

	s.accounts.Store(r.Accounts)
	s.pasvIP.public.Store(&r.PublicHost)
	s.texts.Store(&texts{banner: r.Banner, login: r.LoginMessage})
	s.buckets.set(r.Bandwidth)
	s.bans.setOptions(r.Ban)
	s.snaps.set(r.Snapshots)

	for _, snap := range r.Snapshots.List { // their manifests too, from the next look
		s.registerManifest(snap.Path, true)
	}

	s.log.Info("configuration reloaded")

	return nil
}

// ReopenLogs reopens the transfer log (after logrotate moved it).
func (s *Server) ReopenLogs() error {
	if s.xfer == nil {
		return nil
	}

	if err := s.xfer.reopen(); err != nil {
		s.log.Error("reopen transfer log", zap.Error(err))

		return err
	}

	return nil
}
