package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"wharf/internal/ftpraw"
)

// Scenarios 6 and 7: many big uploads, some killed; many uploads to one name.

// payload makes upload contents quickly: a random 1 MiB block, each MiB
// stamped with the upload's and the MiB's number, so no two uploads and no
// two MiB of one upload are the same.
type payload struct{ block []byte }

const payloadChunk = 1 << 20

func newPayload() payload {
	b := make([]byte, payloadChunk)
	_, _ = rand.Read(b)

	return payload{block: b}
}

// fill writes MiB i of upload n into buf (payloadChunk bytes).
func (p payload) fill(buf []byte, n, i int) {
	copy(buf, p.block)
	copy(buf, fmt.Sprintf("upload %06d MiB %06d", n, i))
}

// fileSHA256 hashes a file on disk.
func fileSHA256(path string) ([32]byte, error) {
	var sum [32]byte

	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()

	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}

	copy(sum[:], h.Sum(nil))

	return sum, nil
}

// kill is how an upload is interrupted half-way, if at all.
type kill int

const (
	killNone    kill = iota
	killRST          // the data connection is reset (SO_LINGER 0)
	killABOR         // ABOR on the control connection
	killControl      // the control connection is closed
)

func (k kill) String() string {
	return [...]string{"none", "RST", "ABOR", "control close"}[k]
}

// killOf picks the 10 killed uploads of 100 (numbers 5, 15, ... 95) and
// their ways: 4 RST, 3 ABOR, 3 control close.
func killOf(n int) kill {
	if n%10 != 5 {
		return killNone
	}

	return [...]kill{killRST, killABOR, killControl}[(n/10)%3]
}

// upload is the outcome of one STOR of scenario 6.
type upload struct {
	n       int
	kill    kill
	done    bool          // 226 received
	intact  bool          // the file on disk has the SHA-256 sent
	replies string        // what the kill got back
	took    time.Duration // from the kill to wharf's reaction
	err     error
}

const (
	uploadCount   = 100
	uploadSize    = 64 << 20
	uploadWorkers = 8
)

func uploadName(n int) string { return fmt.Sprintf("upload-%03d.bin", n) }

// runUploads is scenario 6.
func runUploads(ctx context.Context, s *suite, r *result) error {
	st := defaults()
	st.idleTimeout, st.loginTimeout, st.dataTimeout = "30s", "30s", "10s"

	w, err := s.start(ctx, "uploads", st)
	if err != nil {
		return err
	}
	defer w.stop()

	if err := w.warmPassive(ctx); err != nil {
		return err
	}

	base, err := w.baseline(ctx)
	if err != nil {
		return err
	}

	p := newPayload()
	jobs := make(chan int)
	results := make([]upload, uploadCount)

	var wg sync.WaitGroup
	for range uploadWorkers {
		wg.Go(func() {
			var c *ftpraw.Conn
			for n := range jobs {
				if c == nil {
					var err error
					if c, err = login(ctx, localIP(1), w.addr, aliceName, alicePassword); err != nil {
						results[n] = upload{n: n, err: err}

						continue
					}
				}

				results[n] = storeOne(c, w, p, n)
				if results[n].kill != killNone || results[n].err != nil {
					c.Close() // a killed session is not reused
					c = nil
				}
			}

			if c != nil {
				quit(c)
			}
		})
	}

	start := time.Now()
	for n := range uploadCount {
		jobs <- n
	}

	close(jobs)
	wg.Wait()
	took := time.Since(start)

	// Wait for wharf to finish cleaning up before looking at the folder.
	after, settleTook, settled := w.settle(ctx, base, 5*time.Second)

	completed, intact, killed := 0, 0, 0
	var failed []string
	outcomes := make(map[string]int)
	slowest := make(map[kill]time.Duration)
	for _, u := range results {
		switch {
		case u.err != nil:
			failed = append(failed, fmt.Sprintf("%s: %v", uploadName(u.n), u.err))
		case u.kill != killNone:
			killed++
			outcomes[fmt.Sprintf("%s → %s", u.kill, u.replies)]++
			slowest[u.kill] = max(slowest[u.kill], u.took)
		case u.done:
			completed++
			if u.intact {
				intact++
			}
		}
	}

	firstFailure := ""
	if len(failed) > 0 {
		firstFailure = failed[0]
	}

	r.check("completed uploads intact", completed == 90 && intact == 90, "90 of 90 with the SHA-256 sent",
		"%d completed, %d intact, %d failed%s; %.0f MiB/s over %s", completed, intact, len(failed), errNote(firstFailure),
		float64(uploadCount*uploadSize)/(1<<20)/took.Seconds(), ms(took))

	var published []string
	for n := range uploadCount {
		if killOf(n) != killNone && exists(filepath.Join(w.home, uploadName(n))) {
			published = append(published, uploadName(n))
		}
	}

	var seen []string
	for what, count := range outcomes {
		seen = append(seen, fmt.Sprintf("%s ×%d", what, count))
	}

	slices.Sort(seen)
	r.check("killed uploads (4 RST, 3 ABOR, 3 control close)", len(published) == 0 && killed == 10, "nothing under their names",
		"%d of 10 names exist%s; %s; wharf reacted within %s (RST), %s (ABOR), %s (control close)",
		len(published), errNote(strings.Join(published, ", ")), strings.Join(seen, "; "),
		ms(slowest[killRST]), ms(slowest[killABOR]), ms(slowest[killControl]))

	temps, parts, err := tempFiles(w.home)
	r.check("temporary files left", err == nil && len(temps) == 0, "none", "%d%s", len(temps), errNote(errText(err)))
	r.check("parts kept to resume (alice's killed uploads)", len(parts) <= killed, fmt.Sprintf("at most one per killed upload, %d", killed),
		"%d", len(parts))

	r.check("fds and goroutines back to baseline", settled, "within 5 s", "%s in %s (baseline %s)", after, ms(settleTook), base)

	return nil
}

// storeOne uploads upload n on c, killing it half-way if killOf(n) says so.
// A completed upload is checked on disk, then removed to save space.
func storeOne(c *ftpraw.Conn, w *wharf, p payload, n int) upload {
	u := upload{n: n, kill: killOf(n)}
	name := uploadName(n)

	data, err := c.StartTransfer("STOR "+name, replyTimeout)
	if err != nil {
		u.err = err

		return u
	}

	h := sha256.New()
	buf := make([]byte, payloadChunk)

	for i := range uploadSize / payloadChunk {
		if u.kill != killNone && i == uploadSize/payloadChunk/2 {
			u.replies, u.took = killUpload(c, data, u.kill)

			return u
		}

		p.fill(buf, n, i)
		h.Write(buf)

		_ = data.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := data.Write(buf); err != nil {
			ftpraw.Reset(data)
			u.err = err

			return u
		}
	}

	// Closing the data connection ends the file (stream mode, RFC 959 §3.4.1).
	if err := data.Close(); err != nil {
		u.err = err

		return u
	}

	rep, err := c.ReadWithin(30 * time.Second)
	if err != nil || rep.Code != 226 {
		u.err = fmt.Errorf("STOR end: %v %w", rep, err)

		return u
	}

	u.done = true
	path := filepath.Join(w.home, name)
	sum, err := fileSHA256(path)
	u.intact = err == nil && bytes.Equal(sum[:], h.Sum(nil))
	_ = os.Remove(path)

	return u
}

// killUpload interrupts an upload, and reports what wharf answered and how
// long it took to react (final reply, or closing the data connection).
func killUpload(c *ftpraw.Conn, data *net.TCPConn, k kill) (string, time.Duration) {
	start := time.Now()

	switch k {
	case killRST:
		ftpraw.Reset(data)
		rep, err := c.ReadWithin(10 * time.Second)
		if err != nil {
			return "no reply: " + err.Error(), time.Since(start)
		}

		return fmt.Sprint(rep.Code), time.Since(start)
	case killABOR:
		// Keep the data connection open: closing it would end the file
		// cleanly before the server even reads ABOR.
		defer ftpraw.Reset(data)

		if err := c.Send("ABOR"); err != nil {
			return err.Error(), time.Since(start)
		}

		var codes []string
		for len(codes) < 4 {
			rep, err := c.ReadWithin(5 * time.Second)
			if err != nil {
				codes = append(codes, err.Error())

				break
			}

			codes = append(codes, fmt.Sprint(rep.Code))
			if rep.Code == 226 || rep.Code == 225 {
				break
			}
		}

		return strings.Join(codes, "+"), time.Since(start)
	case killNone:
		return "", 0
	case killControl:
		c.Close()
		at, closed := ftpraw.WaitClosed(data, time.Now().Add(5*time.Second))
		ftpraw.Reset(data)

		if !closed {
			return "data connection still open after 5 s", time.Since(start)
		}

		return "data connection closed", at.Sub(start)
	}

	return "", 0
}

// runSameName is scenario 7: 50 uploads to one name at once; the result is
// exactly one of them.
func runSameName(ctx context.Context, s *suite, r *result) error {
	const (
		uploaders = 50
		size      = 4 << 20
		name      = "same.bin"
	)

	st := defaults()
	st.idleTimeout, st.loginTimeout, st.dataTimeout = "30s", "30s", "10s"
	st.passivePorts = 32 // 13 sessions per address each need a port of their own

	w, err := s.start(ctx, "same-name", st)
	if err != nil {
		return err
	}
	defer w.stop()

	// Log in two at a time (wharf runs GOMAXPROCS = 2 bcrypt checks at once), from 127.0.0.2-5.
	conns, err := loginMany(ctx, w, uploaders, 2, func(i int) net.IP { return localIP(2 + i%4) }, aliceName, alicePassword)
	if err != nil {
		return err
	}

	defer func() {
		for _, c := range conns {
			quit(c)
		}
	}()

	p := newPayload()
	sums := make([][32]byte, uploaders)
	replies := make([]string, uploaders)

	// Every uploader sends half its file, waits until all have, then the rest:
	// all 50 are open on the same name at the same moment.
	var half sync.WaitGroup
	half.Add(uploaders)

	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			replies[i], sums[i] = storeSame(c, p, i, name, size, &half)
		})
	}

	wg.Wait()

	ok226 := 0
	var others []string
	for _, rep := range replies {
		if rep == "226" {
			ok226++
		} else {
			others = append(others, rep)
		}
	}

	got, err := fileSHA256(filepath.Join(w.home, name))
	matches := 0
	for _, sum := range sums {
		if err == nil && sum == got {
			matches++
		}
	}

	r.check("concurrent STORs answered", ok226 == uploaders, "50 of 50 get 226", "%d got 226%s", ok226, errNote(strings.Join(others, "; ")))
	r.check("the file is one uploader's content", err == nil && matches == 1, "equals exactly one of the 50", "SHA-256 matches %d uploader(s)%s",
		matches, errNote(errText(err)))

	temps, parts, err := tempFiles(w.home)
	r.check("temporary files left", err == nil && len(temps)+len(parts) == 0, "none (every upload completed)", "%d%s",
		len(temps)+len(parts), errNote(errText(err)))

	return nil
}

// storeSame uploads size bytes of content i to name; it reports the final
// reply code and the SHA-256 of what it sent.
func storeSame(c *ftpraw.Conn, p payload, i int, name string, size int, half *sync.WaitGroup) (string, [32]byte) {
	var sum [32]byte
	halfDone := false
	arrive := func() {
		if !halfDone {
			halfDone = true
			half.Done()
		}
	}
	defer arrive()

	data, err := c.StartTransfer("STOR "+name, replyTimeout)
	if err != nil {
		return err.Error(), sum
	}

	h := sha256.New()
	buf := make([]byte, payloadChunk)

	for k := range size / payloadChunk {
		if k == size/payloadChunk/2 {
			arrive()
			half.Wait()
		}

		p.fill(buf, 1000+i, k)
		h.Write(buf)

		_ = data.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := data.Write(buf); err != nil {
			ftpraw.Reset(data)

			return err.Error(), sum
		}
	}

	_ = data.Close()
	copy(sum[:], h.Sum(nil))

	rep, err := c.ReadWithin(30 * time.Second)
	if err != nil {
		return err.Error(), sum
	}

	return fmt.Sprint(rep.Code), sum
}

// loginMany opens n sessions, workers at a time; session i comes from from(i).
func loginMany(ctx context.Context, w *wharf, n, workers int, from func(i int) net.IP, user, pass string) ([]*ftpraw.Conn, error) {
	conns := make([]*ftpraw.Conn, n)
	errs := make([]error, n)

	parallel(n, workers, func(i int) { conns[i], errs[i] = login(ctx, from(i), w.addr, user, pass) })

	var err error
	for i, c := range conns {
		if errs[i] != nil && err == nil {
			err = fmt.Errorf("login %d of %d: %w", i+1, n, errs[i])
		}

		if errs[i] != nil && c != nil {
			c.Close()
		}
	}

	if err != nil {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}

		return nil, err
	}

	return conns, nil
}
