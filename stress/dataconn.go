package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wharf/internal/ftpraw"
)

// Scenario 5: data connections only go where they should.

// thief connects from local to a data port and counts what it receives
// until the server closes it (or 3 s pass).
type thief struct {
	got  atomic.Int64
	done chan struct{}
	err  error
}

func steal(ctx context.Context, local net.IP, addr string) *thief {
	t := &thief{done: make(chan struct{})}

	go func() {
		defer close(t.done)

		nc, err := dialTCP(ctx, local, addr)
		if err != nil {
			t.err = err

			return
		}
		defer nc.Close()

		_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, _ := io.Copy(io.Discard, nc)
		t.got.Store(n)
	}()

	return t
}

// listener counts the connections made to it.
type listener struct {
	ln    net.Listener
	count atomic.Int32
	wg    sync.WaitGroup
}

func listen(ctx context.Context, addr string) (*listener, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}

	l := &listener{ln: ln}
	l.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}

			l.count.Add(1)
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.Copy(io.Discard, c)
				_ = c.Close()
			}()
		}
	})

	return l, nil
}

func (l *listener) port() int { return l.ln.Addr().(*net.TCPAddr).Port }

func (l *listener) close() {
	_ = l.ln.Close()
	l.wg.Wait()
}

// portArg renders ip:port as a PORT argument (RFC 959 h1,h2,h3,h4,p1,p2).
func portArg(ip net.IP, port int) string {
	v4 := ip.To4()

	return fmt.Sprintf("%d,%d,%d,%d,%d,%d", v4[0], v4[1], v4[2], v4[3], port>>8, port&0xff)
}

// runTheftBounce is scenario 5.
func runTheftBounce(ctx context.Context, s *suite, r *result) error {
	w, err := s.start(ctx, "theft-bounce", defaults())
	if err != nil {
		return err
	}
	defer w.stop()

	secret := make([]byte, 4<<20)
	_, _ = rand.Read(secret)
	// Published (world-readable): anonymous sessions see nothing else.
	if err := os.WriteFile(filepath.Join(w.pub, "secret.bin"), secret, 0o644); err != nil { //nolint:gosec // public, as anonymous sessions need
		return err
	}

	victim, err := login(ctx, localIP(1), w.addr, "anonymous", "victim@example.com")
	if err != nil {
		return err
	}
	defer quit(victim)

	// RETR 1: the stranger connects to the port as soon as EPSV announces it,
	// before the victim even sends RETR.
	port, err := victim.EPSV()
	if err != nil {
		return err
	}

	early := steal(ctx, localIP(2), victim.DataAddr(port))
	_ = sleep(ctx, 100*time.Millisecond)
	got1, err1 := victimRetr(ctx, victim, port, nil)
	<-early.done

	// RETR 2: the victim sends RETR first (wharf now waits for the data
	// connection); the stranger connects before the victim does.
	port, err = victim.EPSV()
	if err != nil {
		return err
	}

	var late *thief
	got2, err2 := victimRetr(ctx, victim, port, func() {
		late = steal(ctx, localIP(2), victim.DataAddr(port))
		_ = sleep(ctx, 100*time.Millisecond)
	})
	if late != nil {
		<-late.done
	}

	stolen := early.got.Load()
	if late != nil {
		stolen += late.got.Load()
	}

	r.check("stranger on the victim's passive port", stolen == 0 && early.err == nil && late != nil && late.err == nil,
		"receives 0 bytes on both RETRs", "%d bytes stolen (connected first: before RETR, and after RETR)", stolen)
	intact := bytes.Equal(got1, secret) && bytes.Equal(got2, secret)
	r.check("victim's own downloads meanwhile", err1 == nil && err2 == nil && intact,
		"both complete and intact", "%d and %d of %d bytes, intact: %v%s", len(got1), len(got2), len(secret),
		intact, errNote(errText(errors.Join(err1, err2))))

	return bounce(ctx, w, r)
}

// victimRetr downloads secret.bin on an EPSV port already announced; between
// sending RETR and connecting it runs meanwhile, if given.
func victimRetr(ctx context.Context, c *ftpraw.Conn, port int, meanwhile func()) ([]byte, error) {
	var data *net.TCPConn
	var err error

	if meanwhile == nil {
		if data, err = dialTCP(ctx, c.Local(), c.DataAddr(port)); err != nil {
			return nil, err
		}
	}

	if err := c.Send("RETR secret.bin"); err != nil {
		return nil, err
	}

	if meanwhile != nil {
		meanwhile()
		if data, err = dialTCP(ctx, c.Local(), c.DataAddr(port)); err != nil {
			return nil, err
		}
	}
	defer data.Close()

	rep, err := c.ReadWithin(replyTimeout)
	if err != nil || rep.Code != 150 {
		return nil, fmt.Errorf("RETR: %v %w", rep, err)
	}

	_ = data.SetReadDeadline(time.Now().Add(replyTimeout))
	got, err := io.ReadAll(data)
	if err != nil {
		return got, err
	}

	if rep, err = c.ReadWithin(replyTimeout); err != nil || rep.Code != 226 {
		return got, fmt.Errorf("RETR end: %v %w", rep, err)
	}

	return got, nil
}

// bounce sends PORT and EPRT commands that must be refused, each followed by
// LIST, while listeners on the targets count connections.
func bounce(ctx context.Context, w *wharf, r *result) error {
	third, err := listen(ctx, "127.0.0.3:0")
	if err != nil {
		return err
	}
	defer third.close()

	own, err := listen(ctx, "127.0.0.1:0") // the control case: this one must work
	if err != nil {
		return err
	}
	defer own.close()

	// A privileged port on the client's own address (needs root to listen).
	var low *listener
	for p := 1023; p >= 900 && low == nil; p-- {
		low, _ = listen(ctx, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}

	lowPort := 1021
	if low != nil {
		defer low.close()
		lowPort = low.port()
	} else {
		r.note("port below 1024", "not root: no listener there; the refusals are still checked")
	}

	c, err := login(ctx, localIP(1), w.addr, "anonymous", "bounce@example.com")
	if err != nil {
		return err
	}
	defer quit(c)

	thirdIP := localIP(3)
	ownIP := localIP(1)
	commands := []string{
		"PORT " + portArg(thirdIP, third.port()),
		fmt.Sprintf("EPRT |1|%s|%d|", thirdIP, third.port()),
		"PORT " + portArg(ownIP, lowPort),
		fmt.Sprintf("EPRT |1|%s|%d|", ownIP, lowPort),
		"PORT " + portArg(thirdIP, lowPort),
		"PORT 127,0,0,1,4",
		"PORT 127,0,0,1,300,1",
		"PORT 127,0,0,1,-1,200",
		"PORT a,b,c,d,e,f",
		"PORT",
		"EPRT |1|127.0.0.1|99999|",
		"EPRT |1|127.0.0.1|abc|",
		"EPRT |2|::1|5000|",
		"EPRT |1|127.0.0.1|",
		"EPRT garbage",
	}

	var accepted []string
	for _, cmd := range commands {
		rep, err := c.Cmd(cmd)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}

		if rep.Code < 500 || rep.Code > 599 {
			accepted = append(accepted, fmt.Sprintf("%q → %v", cmd, rep))
		}

		// LIST would use whatever the command set up; nothing was, so it must not connect.
		if err := listAfter(c); err != nil {
			return err
		}
	}

	_ = sleep(ctx, 300*time.Millisecond)

	lowCount := int32(0)
	if low != nil {
		lowCount = low.count.Load()
	}

	r.check("PORT/EPRT to a third address, a port < 1024, or malformed", len(accepted) == 0,
		fmt.Sprintf("all %d refused with 5xx", len(commands)), "%d of %d refused%s", len(commands)-len(accepted), len(commands),
		errNote(strings.Join(accepted, "; ")))
	r.check("connections made to the bounce targets", third.count.Load() == 0 && lowCount == 0, "none",
		"%d to 127.0.0.3:%d, %d to 127.0.0.1:%d", third.count.Load(), third.port(), lowCount, lowPort)

	// The control case: PORT to the client's own high port works, so the
	// listeners above would have seen a connection.
	rep, err := c.Cmd("PORT " + portArg(ownIP, own.port()))
	if err == nil {
		err = listAfter(c)
	}

	_ = sleep(ctx, 200*time.Millisecond)
	r.check("control: PORT to the client's own port ≥ 1024", err == nil && rep.Code == 200 && own.count.Load() == 1,
		"accepted, 1 connection", "%v, %d connection(s)%s", rep, own.count.Load(), errNote(errText(err)))

	return nil
}

// listAfter sends LIST and reads its replies: a 1xx then the final one, or a final one alone.
func listAfter(c *ftpraw.Conn) error {
	rep, err := c.Cmd("LIST")
	if err != nil {
		return fmt.Errorf("LIST: %w", err)
	}

	if rep.Code < 200 {
		if _, err := c.ReadWithin(replyTimeout); err != nil {
			return fmt.Errorf("LIST end: %w", err)
		}
	}

	return nil
}
