package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"wharf/internal/ftpraw"
	"wharf/internal/miniotest"
)

// Scenario 15: the store goes away under load. wharf serves from a MinIO of
// the suite's own, which is killed with SIGKILL for 10 s while 50 sessions
// download and upload, then started again on the same port and data.

// At 2 MiB/s a session downloads the object in 6 s, and uploads a small
// file in 3 s (one PUT at the end) or a large one in 17 s: its first part
// goes to the store at 8 s, before the kill, its second at 16 s, during the
// outage, which cuts a multipart upload in the middle.
const (
	outageSessions = 50 // half download, half upload
	outageRate     = "2MiB"
	outageBefore   = 10 * time.Second // transfers run this long before the kill
	outageLength   = 10 * time.Second // the store is down this long
	outageAfter    = 8 * time.Second  // and new transfers start until this long after its return
	outageDownload = 12 << 20         // pub/big.bin
	outageSmall    = 6 << 20          // an upload in one PUT, at the end
	outageLarge    = 34 << 20         // an upload of three parts
	outageRecovery = 5 * time.Second  // the bound on a fresh download after the store's return
)

// outageTry is the outcome of one transfer: its final reply, and whether
// the bytes were right.
type outageTry struct {
	code    int       // the final reply; 0 when none came
	intact  bool      // 226 and the bytes were the object's, or were all sent
	ended   time.Time // when the reply came
	problem string    // what went wrong, when neither complete nor 4xx
}

// outageClient is one of the 50 sessions: it transfers again and again, a
// new attempt 0.5 s after a 4xx, as a client that retries would.
type outageClient struct {
	n      int
	upload bool
	size   int
	tries  []outageTry
	sent   map[string][32]byte // upload name -> the SHA-256 of all its bytes
	done   map[string]bool     // the upload names that got 226
}

// runStoreOutage is scenario 15.
func runStoreOutage(ctx context.Context, s *suite, r *result) error {
	bin, err := miniotest.Binary()
	if err != nil {
		r.skip("no MinIO to take away: %v", err)

		return nil
	}

	store, err := miniotest.Start(ctx, bin, filepath.Join(s.root, "store-outage-minio"))
	if err != nil {
		return err
	}
	defer store.Kill()

	client, err := store.Client()
	if err != nil {
		return err
	}

	const bucket = "stress"
	if err := store.MakeBucket(ctx, bucket); err != nil {
		return err
	}

	big := make([]byte, outageDownload)
	p := newPayload()
	for i := range outageDownload / payloadChunk {
		p.fill(big[i*payloadChunk:], 999999, i)
	}

	for key, data := range map[string][]byte{"pub/big.bin": big, "pub/small.txt": []byte("small\n")} {
		if _, err := client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			return err
		}
	}

	st := defaults()
	st.idleTimeout, st.loginTimeout, st.dataTimeout = "30s", "30s", "30s"
	st.sessionLimit = outageRate
	st.store = &s3Store{endpoint: store.Endpoint, bucket: bucket, accessKey: store.AccessKey, secretKey: store.SecretKey}

	w, err := s.start(ctx, "store-outage", st)
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

	// The clients: odd ones upload, alternately small and large files.
	clients := make([]*outageClient, outageSessions)
	for i := range clients {
		c := &outageClient{n: i, upload: i%2 == 1, size: outageDownload, sent: map[string][32]byte{}, done: map[string]bool{}}
		if c.upload {
			c.size = []int{outageSmall, outageLarge}[(i/2)%2]
		}

		clients[i] = c
	}

	// Every session logs in first, so that the transfers start together and
	// the kill finds the first large uploads between their first and second
	// parts. Session i comes from 127.0.0.(2 + i%8).
	from := func(i int) net.IP { return localIP(2 + (2*i)%8) }
	readers, err := loginMany(ctx, w, outageSessions/2, 8, from, "anonymous", "outage@example.com")
	if err != nil {
		return err
	}

	writers, err := loginMany(ctx, w, outageSessions/2, 8, func(i int) net.IP { return localIP(3 + (2*i)%8) }, aliceName, alicePassword)
	if err != nil {
		return err
	}

	stopAt := time.Now().Add(outageBefore + outageLength + outageAfter)

	var wg sync.WaitGroup
	for _, c := range clients {
		conn := readers[c.n/2]
		if c.upload {
			conn = writers[c.n/2]
		}

		wg.Go(func() { c.run(ctx, w, conn, p, sha256.Sum256(big), stopAt) })
	}

	if err := sleep(ctx, outageBefore); err != nil {
		return err
	}

	store.Kill()
	killed := time.Now()

	if err := sleep(ctx, outageLength/2); err != nil {
		return err
	}

	readyCode, readyBody := w.probe(ctx, "/readyz")

	if err := sleep(ctx, outageLength-time.Since(killed)); err != nil {
		return err
	}

	if err := store.Restart(ctx); err != nil {
		return err
	}

	back := time.Now()

	recovered, fresh := freshDownload(ctx, w, back.Add(2*outageRecovery))
	readyAgain := waitProbe(ctx, w, "/readyz", http.StatusOK, back.Add(2*outageRecovery))

	wg.Wait()

	r.check("/readyz during the outage", readyCode == http.StatusServiceUnavailable && strings.Contains(readyBody, "unavailable"),
		"503 with the reason", "%d %q, %s after the kill", readyCode, readyBody, ms(outageLength/2))
	r.check("ready again", readyAgain >= 0 && readyAgain <= outageRecovery, "within 5 s of the store's return",
		"%s", durationOrNever(readyAgain))
	if !recovered {
		fresh = -1
	}

	r.check("recovery", fresh >= 0 && fresh <= outageRecovery, "a fresh download within 5 s of the store's return",
		"%s", durationOrNever(fresh))

	reportOutageTries(r, clients, killed, back)

	if err := checkOutageBucket(ctx, r, client, bucket, clients); err != nil {
		return err
	}

	u, took, ok := w.settle(ctx, usage{fds: base.fds + 16, goroutines: base.goroutines + 2*16}, 15*time.Second)
	sessions, _ := w.metric(ctx, "wharf_sessions")
	r.check("nothing stuck", ok && sessions == 0,
		"no session left; descriptors and goroutines back within 15 s to the baseline and 16 idle connections to the store",
		"%v after %s (baseline %v), %v sessions", u, ms(took), base, sessions)

	lines, _ := w.logLines()
	warnings := 0
	for _, l := range lines {
		if l.Msg == "storage unavailable" {
			warnings++
		}
	}

	r.note("log lines \"storage unavailable\"", "%d for one outage", warnings)

	return nil
}

// run transfers on conn (logged in), and on a new session if that one
// breaks, until stopAt; then it ends the transfer under way and quits.
func (c *outageClient) run(ctx context.Context, w *wharf, conn *ftpraw.Conn, p payload, want [32]byte, stopAt time.Time) {
	defer func() {
		if conn != nil {
			quit(conn)
		}
	}()

	local := conn.Local()

	for attempt := 0; time.Now().Before(stopAt) && ctx.Err() == nil; attempt++ {
		if conn == nil {
			var err error

			user, pass := "anonymous", "outage@example.com"
			if c.upload {
				user, pass = aliceName, alicePassword
			}

			if conn, err = login(ctx, local, w.addr, user, pass); err != nil {
				c.tries = append(c.tries, outageTry{ended: time.Now(), problem: "login: " + errText(err)})
				_ = sleep(ctx, 500*time.Millisecond)

				continue
			}
		}

		var t outageTry
		if c.upload {
			t = c.store(conn, p, attempt)
		} else {
			t = c.fetch(conn, want)
		}

		c.tries = append(c.tries, t)

		switch {
		case t.code == 0:
			conn.Close() // the session is in an unknown state
			conn = nil
		case t.code/100 == 4:
			_ = sleep(ctx, 500*time.Millisecond)
		}
	}
}

// fetch downloads pub/big.bin once.
func (c *outageClient) fetch(conn *ftpraw.Conn, want [32]byte) outageTry {
	data, err := conn.StartTransfer("RETR big.bin", 30*time.Second)
	if err != nil {
		return refused(err)
	}

	_ = data.SetDeadline(time.Now().Add(90 * time.Second))
	h := sha256.New()
	n, _ := io.Copy(h, data)
	_ = data.Close()

	rep, err := conn.ReadWithin(60 * time.Second)
	if err != nil {
		return outageTry{ended: time.Now(), problem: "no final reply: " + errText(err)}
	}

	t := outageTry{code: rep.Code, ended: time.Now()}

	switch {
	case rep.Code == 226 && n == outageDownload && [32]byte(h.Sum(nil)) == want:
		t.intact = true
	case rep.Code == 226:
		t.problem = fmt.Sprintf("226 after %d bytes that are not the object", n)
	case rep.Code/100 != 4:
		t.problem = rep.String()
	}

	return t
}

// store uploads a new name, of c.size bytes of the payload.
func (c *outageClient) store(conn *ftpraw.Conn, p payload, attempt int) outageTry {
	num := c.n*1000 + attempt
	name := fmt.Sprintf("up-%06d.bin", num)

	data, err := conn.StartTransfer("STOR "+name, 30*time.Second)
	if err != nil {
		return refused(err)
	}

	// What the object must hold if it appears: all of it, whether or not the
	// server takes it all.
	h := sha256.New()
	buf := make([]byte, payloadChunk)
	for i := range c.size / payloadChunk {
		p.fill(buf, num, i)
		h.Write(buf)
	}

	c.sent[name] = [32]byte(h.Sum(nil))

	_ = data.SetDeadline(time.Now().Add(90 * time.Second))
	for i := range c.size / payloadChunk {
		p.fill(buf, num, i)
		if _, err := data.Write(buf); err != nil {
			break // the server gave up on the upload: its reply says why
		}
	}

	_ = data.Close()

	rep, err := conn.ReadWithin(90 * time.Second)
	if err != nil {
		return outageTry{ended: time.Now(), problem: "no final reply: " + errText(err)}
	}

	t := outageTry{code: rep.Code, ended: time.Now(), intact: rep.Code == 226}
	if rep.Code == 226 {
		c.done[name] = true
	} else if rep.Code/100 != 4 {
		t.problem = rep.String()
	}

	return t
}

// refused is the outcome of a transfer refused before any data (StartTransfer's error).
func refused(err error) outageTry {
	if re, ok := errors.AsType[*ftpraw.ReplyError](err); ok {
		t := outageTry{code: re.Got.Code, ended: time.Now()}
		if re.Got.Code/100 != 4 {
			t.problem = re.Got.String()
		}

		return t
	}

	return outageTry{ended: time.Now(), problem: errText(err)}
}

// reportOutageTries checks that every transfer ended with 226 and the right
// bytes or with a 4xx, and that every client completed one after the
// store's return.
func reportOutageTries(r *result, clients []*outageClient, killed, back time.Time) {
	codes := map[int]int{}
	var problems []string

	total, during, recovered := 0, 0, 0

	for _, c := range clients {
		completedAfter := false

		for _, t := range c.tries {
			total++
			codes[t.code]++

			if t.problem != "" {
				problems = append(problems, fmt.Sprintf("session %d: %s", c.n, t.problem))
			}

			if t.ended.After(killed) && t.ended.Before(back) {
				during++
			}

			if t.intact && t.ended.After(back) {
				completedAfter = true
			}
		}

		if completedAfter {
			recovered++
		}
	}

	var seen []string
	for code, n := range codes {
		reply := fmt.Sprint(code)
		if code == 0 {
			reply = "no reply"
		}

		seen = append(seen, fmt.Sprintf("%d × %s", n, reply))
	}

	sort.Strings(seen)

	r.check("every transfer completes or gets a 4xx", len(problems) == 0, "226 with the right bytes, or 4xx; nothing else",
		"%d transfers (%d ended during the outage): %s%s", total, during, strings.Join(seen, ", "),
		errNote(strings.Join(firstFew(problems), "; ")))
	r.check("every client completes after the store's return", recovered == len(clients), "all 50",
		"%d of %d", recovered, len(clients))
}

// checkOutageBucket checks every object of the bucket below alice/: each
// must be one of the uploads, whole; and every upload answered 226 must be
// there.
func checkOutageBucket(ctx context.Context, r *result, client *minio.Client, bucket string, clients []*outageClient) error {
	sent := map[string][32]byte{}
	done := map[string]bool{}

	for _, c := range clients {
		maps.Copy(sent, c.sent)

		for name := range c.done {
			done[name] = true
		}
	}

	var bad, unknown []string

	objects, afterRefusal, answered := 0, 0, maps.Clone(done)

	for oi := range client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "alice/", Recursive: true}) {
		if oi.Err != nil {
			return oi.Err
		}

		objects++
		name := strings.TrimPrefix(oi.Key, "alice/")

		want, ok := sent[name]
		if !ok {
			unknown = append(unknown, name)

			continue
		}

		obj, err := client.GetObject(ctx, bucket, oi.Key, minio.GetObjectOptions{})
		if err != nil {
			return err
		}

		h := sha256.New()
		_, err = io.Copy(h, obj)
		_ = obj.Close()

		if err != nil {
			return err
		}

		if [32]byte(h.Sum(nil)) != want {
			bad = append(bad, fmt.Sprintf("%s (%d bytes)", name, oi.Size))
		}

		if !done[name] {
			afterRefusal++
		}

		delete(done, name)
	}

	var lost []string
	for name := range done {
		lost = append(lost, name)
	}

	slices.Sort(lost)

	// MinIO lists incomplete uploads by exact key only: ask for each name
	// whose upload was not answered 226.
	incomplete := 0
	for name := range sent {
		if answered[name] {
			continue
		}

		for up := range client.ListIncompleteUploads(ctx, bucket, "alice/"+name, false) {
			if up.Err == nil && up.Key == "alice/"+name {
				incomplete++
			}
		}
	}

	r.check("objects in the bucket", len(bad) == 0 && len(unknown) == 0 && len(lost) == 0,
		"every object one whole upload; every upload answered 226 there",
		"%d objects for %d uploads tried, %d answered 226: %d corrupt or partial%s, %d unknown%s, %d missing%s",
		objects, len(sent), len(answered), len(bad), errNote(strings.Join(firstFew(bad), ", ")),
		len(unknown), errNote(strings.Join(firstFew(unknown), ", ")), len(lost), errNote(strings.Join(firstFew(lost), ", ")))
	r.note("uploads whose client got a 4xx but whose object is whole in the bucket", "%d (the store completed it, its answer was lost)",
		afterRefusal)
	r.note("incomplete multipart uploads left", "%d (their abort failed while the store was down)", incomplete)

	return nil
}

// freshDownload logs in and downloads pub/small.txt, again every 100 ms until
// it works or deadline passes, and reports how long after now it worked.
func freshDownload(ctx context.Context, w *wharf, deadline time.Time) (bool, time.Duration) {
	start := time.Now()

	for time.Now().Before(deadline) && ctx.Err() == nil {
		if got, err := downloadOnce(ctx, w, "small.txt"); err == nil && string(got) == "small\n" {
			return true, time.Since(start)
		}

		_ = sleep(ctx, 100*time.Millisecond)
	}

	return false, time.Since(start)
}

// downloadOnce logs in anonymously from 127.0.0.10, downloads name and quits.
func downloadOnce(ctx context.Context, w *wharf, name string) ([]byte, error) {
	c, err := login(ctx, localIP(10), w.addr, "anonymous", "fresh@example.com")
	if err != nil {
		return nil, err
	}
	defer quit(c)

	data, err := c.StartTransfer("RETR "+name, 10*time.Second)
	if err != nil {
		return nil, err
	}

	_ = data.SetDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(data)
	_ = data.Close()

	if _, err := c.ReadExpect(226, "RETR"); err != nil {
		return nil, err
	}

	return got, nil
}

// probe answers GET path on the admin listener: its status and body (0 and
// the error when it did not answer).
func (w *wharf) probe(ctx context.Context, path string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.admin+path, http.NoBody)
	if err != nil {
		return 0, err.Error()
	}

	resp, err := w.http.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()

	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))

	return resp.StatusCode, strings.TrimSpace(string(body))
}

// waitProbe polls path every 100 ms until it answers code, and reports how
// long that took; -1 if it did not by deadline.
func waitProbe(ctx context.Context, w *wharf, path string, code int, deadline time.Time) time.Duration {
	start := time.Now()

	for time.Now().Before(deadline) && ctx.Err() == nil {
		if got, _ := w.probe(ctx, path); got == code {
			return time.Since(start)
		}

		_ = sleep(ctx, 100*time.Millisecond)
	}

	return -1
}

// durationOrNever formats a duration, or "never" for a negative one.
func durationOrNever(d time.Duration) string {
	if d < 0 {
		return "never (within the time allowed)"
	}

	return ms(d)
}

// firstFew keeps the first three of list, for a figure that names examples.
func firstFew(list []string) []string {
	return list[:min(3, len(list))]
}
