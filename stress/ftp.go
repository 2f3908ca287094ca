package main

import (
	"context"
	"errors"
	"net"
	"time"

	"wharf/internal/ftpraw"
)

// The suite's FTP client is internal/ftpraw, shared with bench; these are the suite's defaults and its
// retry policy on top.

// replyTimeout bounds every command's round trip unless a caller sets its own deadline.
const replyTimeout = 10 * time.Second

// dialTimeout bounds every TCP connect.
const dialTimeout = 5 * time.Second

// options are a session's: from local (127.0.0.N; nil for the kernel's choice), replyTimeout per reply.
func options(local net.IP) ftpraw.Options {
	return ftpraw.Options{Local: local, Timeout: replyTimeout}
}

// dialTCP opens a TCP connection from local to addr.
func dialTCP(ctx context.Context, local net.IP, addr string) (*net.TCPConn, error) {
	return ftpraw.DialTCP(ctx, local, addr, dialTimeout)
}

// dialFTP connects from local to addr and reads the greeting (220, or 421 when refused).
func dialFTP(ctx context.Context, local net.IP, addr string) (*ftpraw.Conn, ftpraw.Reply, error) {
	return ftpraw.Dial(ctx, addr, options(local))
}

// login dials and logs in, retrying a few times on 421: when wharf's bcrypt
// slots are all taken (it fails fast rather than queueing), or when the
// address's previous sessions are not yet released.
func login(ctx context.Context, local net.IP, addr, user, pass string) (*ftpraw.Conn, error) {
	var last error

	for attempt := range 8 {
		if attempt > 0 {
			if err := sleep(ctx, time.Duration(50+50*attempt)*time.Millisecond); err != nil {
				return nil, err
			}
		}

		c, rep, err := dialFTP(ctx, local, addr)
		if err != nil {
			return nil, err
		}

		err = ftpraw.Check("connect", rep, 220)
		if err == nil {
			err = c.Login(user, pass)
			if err == nil {
				return c, nil
			}
		}

		c.Close()
		last = err

		if re, ok := errors.AsType[*ftpraw.ReplyError](err); !ok || re.Got.Code != 421 {
			return nil, err
		}
	}

	return nil, last
}

// quit ends a session politely (QUIT, then the server closes) when the suite is done with it; a failure
// there is not what any scenario checks.
func quit(c *ftpraw.Conn) {
	_ = c.Quit()
}
