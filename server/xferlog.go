package server

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	"wharf/internal/logsafe"
)

// transferLog writes the xferlog format of wu-ftpd, ProFTPD and vsftpd, one
// line per transfer, so existing log analysers read it:
//
//	current-time transfer-time remote-host file-size filename transfer-type
//	special-action-flag direction access-mode username service-name
//	authentication-method authenticated-user-id completion-status
//
// service-name is ftp, or http for a download from the HTTP listener.
type transferLog struct {
	mu   sync.Mutex
	path string
	f    *os.File
}

type xferRecord struct {
	when      time.Time
	duration  time.Duration
	remoteIP  string
	bytes     int64
	path      string
	incoming  bool
	anonymous bool
	user      string // for anonymous sessions, the password given (an e-mail address by custom)
	complete  bool
	service   string // the service-name field: "" is "ftp"; "http" for the HTTP listener
}

func openTransferLog(path string) (*transferLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open transfer log: %w", err)
	}

	return &transferLog{path: path, f: f}, nil
}

// reopen closes the file and opens its path again, so that logrotate can
// move the old file away (SIGHUP or SIGUSR1).
func (l *transferLog) reopen() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("reopen transfer log: %w", err)
	}

	l.mu.Lock()
	old := l.f
	l.f = f
	l.mu.Unlock()

	return old.Close()
}

func (l *transferLog) write(r xferRecord) error {
	line := r.format()

	l.mu.Lock()
	defer l.mu.Unlock()

	if _, err := l.f.WriteString(line); err != nil {
		return fmt.Errorf("write transfer log: %w", err)
	}

	return nil
}

func (l *transferLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()

	return l.f.Close()
}

// format renders one xferlog line, newline included. Fields are separated by
// single spaces, so blanks inside a file or user name become underscores.
func (r xferRecord) format() string {
	// As wu-ftpd and vsftpd do, the transfer time is at least one second.
	secs := max(1, int64(r.duration.Round(time.Second)/time.Second))

	direction, access := "o", "r"
	if r.incoming {
		direction = "i"
	}

	if r.anonymous {
		access = "a"
	}

	user := r.user
	if user == "" {
		user = "*"
	}

	service := r.service
	if service == "" {
		service = "ftp"
	}

	status := "c"
	if !r.complete {
		status = "i"
	}

	return fmt.Sprintf("%s %d %s %d %s b _ %s %s %s %s 0 * %s\n",
		r.when.Format("Mon Jan _2 15:04:05 2006"),
		secs,
		r.remoteIP,
		r.bytes,
		field(r.path),
		direction,
		access,
		field(user),
		service,
		status)
}

// field makes s safe as one space-separated field: controls, bidi marks and
// line separators are escaped (logsafe), then the remaining blanks become
// underscores.
func field(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return '_'
		}

		return r
	}, logsafe.String(s))
}
