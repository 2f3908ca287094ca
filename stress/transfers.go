package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"wharf/internal/ftpraw"
)

// Scenarios 9 and 10: transfers that stall, and transfers cut by SIGTERM.

// sparseFile makes a file of size bytes that takes no disk space.
func sparseFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}

	if err := f.Truncate(size); err != nil {
		_ = f.Close()

		return err
	}

	return f.Close()
}

// stallKind is one way of stalling a transfer in scenario 9.
type stallKind struct {
	name   string
	upload bool // STOR as alice, else RETR as anonymous
	active bool // PORT: wharf connects to the client
	ascii  bool // TYPE A: the engine's own copy loop, watched only by wharf's watchdog
}

var stallKinds = []stallKind{
	{name: "silent STOR peer, passive (64 KiB, then nothing)", upload: true},
	{name: "silent STOR peer, active (PORT)", upload: true, active: true},
	{name: "RETR peer that never reads, binary (256 MiB file)"},
	{name: "RETR peer that never reads, ASCII (TYPE A)", ascii: true},
}

// stall is one stalled transfer of scenario 9.
type stall struct {
	kind   int           // index in stallKinds
	closed time.Duration // from the last byte moved to wharf closing the session
	ok     bool          // wharf closed it within 15 s
	err    error
}

// runStalls is scenario 9: STOR peers that go silent and RETR peers that
// never read are cut at data_timeout, passive and active, binary and ASCII.
func runStalls(ctx context.Context, s *suite, r *result) error {
	const each = 3

	st := defaults()
	st.idleTimeout, st.loginTimeout = "30s", "30s"
	dataTimeout, _ := time.ParseDuration(st.dataTimeout)

	w, err := s.start(ctx, "stalls", st)
	if err != nil {
		return err
	}
	defer w.stop()

	// Far more than the socket buffers hold, so the sender blocks.
	if err := sparseFile(filepath.Join(w.pub, "big.bin"), 256<<20); err != nil {
		return err
	}

	if err := w.warmPassive(ctx); err != nil {
		return err
	}

	base, err := w.baseline(ctx)
	if err != nil {
		return err
	}

	// Uploads log in as alice from 127.0.0.1, downloads anonymously from 127.0.0.2.
	n := each * len(stallKinds)
	uploaders, err := loginMany(ctx, w, n/2, 2, func(int) net.IP { return localIP(1) }, aliceName, alicePassword)
	if err != nil {
		return err
	}

	readers, err := loginMany(ctx, w, n/2, n/2, func(int) net.IP { return localIP(2) }, "anonymous", "stall@example.com")
	if err != nil {
		return err
	}

	results := make([]stall, n)
	var wg sync.WaitGroup

	for i := range n {
		kind := i / each
		c := readers[i%(n/2)]
		if stallKinds[kind].upload {
			c = uploaders[i%(n/2)]
		}

		wg.Go(func() { results[i] = stallOne(ctx, c, kind, fmt.Sprintf("stalled-%d.bin", i)) })
	}

	wg.Wait()

	for _, c := range slices.Concat(uploaders, readers) {
		c.Close()
	}

	for kind, k := range stallKinds {
		var times []time.Duration
		closed, off := 0, 0
		var firstErr error

		for _, res := range results {
			if res.kind != kind {
				continue
			}

			if res.err != nil && firstErr == nil {
				firstErr = res.err
			}

			if res.ok {
				closed++
				times = append(times, res.closed)
				if res.closed < dataTimeout-time.Second || res.closed > dataTimeout+time.Second {
					off++
				}
			}
		}

		r.check(fmt.Sprintf("%d × %s", each, k.name), closed == each && off == 0 && firstErr == nil,
			fmt.Sprintf("session closed at data_timeout = %s ± 1 s", dataTimeout),
			"%d of %d closed, %d outside the bound%s; %s", closed, each, off, errNote(errText(firstErr)), spread(times))
	}

	after, took, ok := w.settle(ctx, base, 5*time.Second)
	r.check("file handles and sessions released", ok, "fds and goroutines back to baseline within 5 s",
		"%s in %s (baseline %s)", after, ms(took), base)

	temps, parts, err := tempFiles(w.home)
	r.check("temporary files left", err == nil && len(temps) == 0, "none", "%d%s", len(temps), errNote(errText(err)))
	r.check("parts kept to resume (alice's stalled STORs)", len(parts) <= 2*each, fmt.Sprintf("at most one per stalled STOR, %d", 2*each),
		"%d", len(parts))

	return nil
}

// stallOne starts a transfer of the given kind, stalls it, and times how
// long wharf takes to close the session.
func stallOne(ctx context.Context, c *ftpraw.Conn, kind int, name string) stall {
	k := stallKinds[kind]
	res := stall{kind: kind}

	if k.ascii {
		if _, res.err = c.Expect(200, "TYPE A"); res.err != nil {
			return res
		}
	}

	line := "RETR big.bin"
	if k.upload {
		line = "STOR " + name
	}

	var data *net.TCPConn
	if k.active {
		data, res.err = activeTransfer(ctx, c, line)
	} else {
		data, res.err = c.StartTransfer(line, replyTimeout)
	}

	if res.err != nil {
		return res
	}
	defer ftpraw.Reset(data)

	if k.upload {
		_ = data.SetWriteDeadline(time.Now().Add(replyTimeout))
		if _, res.err = data.Write(make([]byte, 64<<10)); res.err != nil {
			return res
		}
	}

	// A download fills the socket buffers within milliseconds of its 150:
	// that is its last byte moved.
	start := time.Now()
	at, ok := ftpraw.WaitClosed(c.NetConn(), start.Add(15*time.Second))
	res.closed, res.ok = at.Sub(start), ok

	return res
}

// activeTransfer listens on the client's address, sends PORT and line, and
// accepts wharf's data connection.
func activeTransfer(ctx context.Context, c *ftpraw.Conn, line string) (*net.TCPConn, error) {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(c.Local().String(), "0"))
	if err != nil {
		return nil, err
	}
	defer ln.Close()

	if _, err := c.Expect(200, "PORT "+portArg(c.Local(), ln.Addr().(*net.TCPAddr).Port)); err != nil {
		return nil, err
	}

	if err := c.Send(line); err != nil {
		return nil, err
	}

	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(replyTimeout))
	conn, err := ln.Accept()
	if err != nil {
		return nil, fmt.Errorf("accept the active data connection: %w", err)
	}

	data := conn.(*net.TCPConn)
	if rep, err := c.ReadWithin(replyTimeout); err != nil || (rep.Code != 150 && rep.Code != 125) {
		ftpraw.Reset(data)

		return nil, fmt.Errorf("%s: %v %w", line, rep, err)
	}

	return data, nil
}

// moving is one transfer of scenario 10, counting its bytes.
type moving struct {
	upload  bool
	name    string
	bytes   atomic.Int64
	started chan struct{} // closed once the 150 came
	err     error
}

const (
	sigtermSize      = 16 << 20
	sigtermTransfers = 25 // downloads, and as many uploads
)

// runSigterm is scenario 10.
func runSigterm(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	st.idleTimeout, st.loginTimeout, st.dataTimeout = "30s", "30s", "10s"
	st.sessionLimit = "512KiB" // 16 MiB then takes 32 s: every transfer is mid-way at SIGTERM
	st.passivePorts = 32
	grace, _ := time.ParseDuration(st.shutdownTimeout)

	w, err := s.start(ctx, "sigterm", st)
	if err != nil {
		return err
	}
	defer w.stop()

	if err := sparseFile(filepath.Join(w.pub, "download.bin"), sigtermSize); err != nil {
		return err
	}

	readers, err := loginMany(ctx, w, sigtermTransfers, 10, func(i int) net.IP { return localIP(2 + i%2) }, "anonymous", "sigterm@example.com")
	if err != nil {
		return err
	}

	writers, err := loginMany(ctx, w, sigtermTransfers, 2, func(i int) net.IP { return localIP(4 + i%2) }, aliceName, alicePassword)
	if err != nil {
		return err
	}

	var all []*moving
	var wg sync.WaitGroup

	for i, c := range slices.Concat(readers, writers) {
		m := &moving{upload: i >= sigtermTransfers, name: fmt.Sprintf("sigterm-%02d.bin", i), started: make(chan struct{})}
		all = append(all, m)

		wg.Go(func() {
			defer c.Close()
			m.run(c)
		})
	}

	// Wait until every transfer has moved at least 256 KiB (15 s at most).
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && !allMoved(all, 256<<10) {
		_ = sleep(ctx, 50*time.Millisecond)
	}

	running := 0
	for _, m := range all {
		if m.bytes.Load() >= 256<<10 {
			running++
		}
	}

	start := time.Now()
	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}

	exited := true
	select {
	case <-w.exited:
	case <-time.After(grace + 10*time.Second):
		exited = false
	}

	took := time.Since(start)
	wg.Wait()

	status := "exit status 0"
	if ee, ok := errors.AsType[*exec.ExitError](w.waitErr); ok {
		status = ee.String()
	} else if w.waitErr != nil {
		status = w.waitErr.Error()
	}

	r.check("transfers running at SIGTERM", running == 2*sigtermTransfers, "all 50 mid-way",
		"%d of %d had moved ≥ 256 KiB of 16 MiB (limit 512 KiB/s per session)", running, 2*sigtermTransfers)
	r.check("wharf exits", exited && took <= grace+2*time.Second && w.waitErr == nil,
		fmt.Sprintf("within shutdown_timeout + 2 s = %s, status 0", grace+2*time.Second), "after %s, %s", ms(took), status)

	var published []string
	cut := 0
	for _, m := range all {
		if m.upload && exists(filepath.Join(w.home, m.name)) {
			published = append(published, m.name)
		}

		if m.bytes.Load() < sigtermSize {
			cut++
		}
	}

	temps, parts, err := tempFiles(w.home)
	r.check("interrupted uploads", len(published) == 0 && err == nil && len(temps) == 0 && len(parts) <= sigtermTransfers,
		fmt.Sprintf("nothing under their names, no temporary file, at most %d parts kept to resume", sigtermTransfers),
		"%d of %d names exist%s, %d temporary files%s, %d parts kept; %d of 50 transfers were cut short",
		len(published), sigtermTransfers, errNote(strings.Join(published, ", ")), len(temps), errNote(errText(err)), len(parts), cut)

	logged, late := endings(w)
	r.note("transfers wharf logged as ended before exiting", "%d of %d; %d log lines written after the log file was closed (stderr.txt)",
		logged, 2*sigtermTransfers, late)

	return nil
}

// endings counts the "transfer incomplete" and "transfer done" lines in
// wharf's log, and the lines its logger could not write because the log file
// was already closed.
func endings(w *wharf) (logged, late int) {
	lines, _ := w.logLines()
	for _, l := range lines {
		if l.Msg == "transfer incomplete" || l.Msg == "transfer done" {
			logged++
		}
	}

	if b, err := os.ReadFile(filepath.Join(w.dir, "stderr.txt")); err == nil {
		late = strings.Count(string(b), "file already closed")
	}

	return logged, late
}

func allMoved(all []*moving, n int64) bool {
	for _, m := range all {
		if m.bytes.Load() < n {
			return false
		}
	}

	return true
}

// run downloads download.bin or uploads m.name until done or cut off (30 s at most).
func (m *moving) run(c *ftpraw.Conn) {
	line := "RETR download.bin"
	if m.upload {
		line = "STOR " + m.name
	}

	data, err := c.StartTransfer(line, replyTimeout)
	if err != nil {
		m.err = err

		return
	}
	defer ftpraw.Reset(data)

	close(m.started)
	_ = data.SetDeadline(time.Now().Add(30 * time.Second))

	if !m.upload {
		buf := make([]byte, 64<<10)
		for {
			k, err := data.Read(buf)
			m.bytes.Add(int64(k))
			if err != nil {
				return
			}
		}
	}

	buf := make([]byte, 64<<10)
	for m.bytes.Load() < sigtermSize {
		k, err := data.Write(buf)
		m.bytes.Add(int64(k))
		if err != nil {
			return
		}
	}
}
