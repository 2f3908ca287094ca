package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"wharf/internal/procstat"
)

// Accounts every instance has. alice's hash is made once per run, at bcrypt
// cost 10 like `wharf hash-password`.
const (
	aliceName     = "alice"
	alicePassword = "stress-alice-password"
	bannerText    = "wharf stress"
)

// settings are the configuration keys a scenario chooses; the rest of the
// configuration is the same for every instance.
type settings struct {
	idleTimeout     string
	loginTimeout    string
	dataTimeout     string
	shutdownTimeout string
	maxClients      int
	maxClientsPerIP int
	maxFailures     int    // [ban] max_failures
	passivePorts    int    // how many passive ports
	maxListEntries  int    // 0: wharf's default
	maxListingMem   string // max_listing_memory; "": wharf's default
	sessionLimit    string // [bandwidth] session_download and session_upload; "" = unlimited
	implicitTLS     bool
	pprof           bool       // [admin] pprof: /debug/pprof/heap?gc=1 lets the suite force a collection
	dropBox         *boxLimits // [anonymous] max_upload_size and the drop box's limits; nil: no size limit, wharf's default limits
	store           *s3Store   // [storage] backend = "s3" on this store; nil: the disk
}

// s3Store is an S3-compatible store for [storage]: the anonymous root is
// then the key prefix "/pub" (with no drop box, which needs the disk) and
// alice's home "/alice".
type s3Store struct {
	endpoint, bucket, accessKey, secretKey string
}

// boxLimits are the [anonymous] keys that bound uploads to incoming/: sizes in
// bytes, 0 for no limit.
type boxLimits struct {
	maxUploadSize int64 // max_upload_size
	quota         int64 // upload_quota
	maxFiles      int   // upload_max_files
	maxDepth      int   // upload_max_depth
	rate          int   // upload_rate, files and folders a minute from one address
	bytesPerHour  int64 // upload_bytes_per_hour, from one address
}

// defaults are short timeouts and the production per-IP cap and ban threshold.
func defaults() settings {
	return settings{
		idleTimeout:     "5s",
		loginTimeout:    "3s",
		dataTimeout:     "2s",
		shutdownTimeout: "3s",
		maxClients:      2000,
		maxClientsPerIP: 16,
		maxFailures:     5,
		passivePorts:    16,
	}
}

// wharf is one running wharf process with its own folder: wharf.toml,
// wharf.log (JSON), stderr.txt, pub/ (the anonymous root, with a writable
// incoming/) and alice/ (alice's read-write home).
type wharf struct {
	name    string
	dir     string
	pub     string
	home    string
	addr    string // control listener
	admin   string // admin listener (/metrics)
	pasv    [2]int // passive port range
	set     settings
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	waitErr error
	http    *http.Client
}

// start writes a configuration for st, checks it with `wharf check-config`,
// starts wharf and waits until it listens. The caller stops it.
func (s *suite) start(ctx context.Context, name string, st settings) (*wharf, error) {
	dir := filepath.Join(s.root, name)
	w := &wharf{
		name:   name,
		dir:    dir,
		pub:    filepath.Join(dir, "pub"),
		home:   filepath.Join(dir, "alice"),
		set:    st,
		exited: make(chan struct{}),
		http:   &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}

	for _, d := range []string{filepath.Join(w.pub, "incoming"), w.home} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, err
		}
	}

	if err := os.WriteFile(filepath.Join(w.pub, "hello.txt"), []byte("hello from wharf stress\n"), 0o644); err != nil { //nolint:gosec // public, as anonymous sessions need
		return nil, err
	}

	lo, err := freePortRange(st.passivePorts)
	if err != nil {
		return nil, err
	}
	w.pasv = [2]int{lo, lo + st.passivePorts - 1}

	cfg, err := w.config(s)
	if err != nil {
		return nil, err
	}

	path := filepath.Join(dir, "wharf.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}

	check := exec.CommandContext(ctx, s.bin, "check-config", "-config", path) //nolint:gosec // the binary under test, from -wharf
	if out, err := check.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("wharf check-config %s: %w: %s", path, err, strings.TrimSpace(string(out)))
	}

	stderr, err := os.Create(filepath.Join(dir, "stderr.txt"))
	if err != nil {
		return nil, err
	}
	defer stderr.Close()

	// Not CommandContext: the scenario decides when and how wharf stops.
	w.cmd = exec.Command(s.bin, "-config", path) //nolint:gosec,noctx // the binary under test, from -wharf; stop() ends it

	w.cmd.Dir = dir
	w.cmd.Stdout = stderr
	w.cmd.Stderr = stderr
	w.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the suite

	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.bin, err)
	}

	go func() {
		w.waitErr = w.cmd.Wait()
		close(w.exited)
	}()

	if err := w.waitListening(ctx); err != nil {
		w.stop()

		return nil, err
	}

	return w, nil
}

// config renders wharf.toml.
func (w *wharf) config(s *suite) (string, error) {
	st := w.set

	var b strings.Builder
	fmt.Fprintf(&b, "listen = \"127.0.0.1:0\"\n")
	fmt.Fprintf(&b, "passive_ports = [%d, %d]\n", w.pasv[0], w.pasv[1])
	fmt.Fprintf(&b, "banner = %q\n", bannerText)
	fmt.Fprintf(&b, "idle_timeout = %q\nlogin_timeout = %q\n", st.idleTimeout, st.loginTimeout)
	fmt.Fprintf(&b, "data_timeout = %q\nshutdown_timeout = %q\n", st.dataTimeout, st.shutdownTimeout)
	fmt.Fprintf(&b, "max_clients = %d\nmax_clients_per_ip = %d\n", st.maxClients, st.maxClientsPerIP)

	if st.maxListEntries > 0 {
		fmt.Fprintf(&b, "max_list_entries = %d\n", st.maxListEntries)
	}

	if st.maxListingMem != "" {
		fmt.Fprintf(&b, "max_listing_memory = %q\n", st.maxListingMem)
	}

	fmt.Fprintf(&b, "\n[log]\nlevel = \"info\"\nformat = \"json\"\nfile = %q\n", filepath.Join(w.dir, "wharf.log"))

	if st.implicitTLS {
		cert, key, err := s.certificate()
		if err != nil {
			return "", err
		}

		fmt.Fprintf(&b, "\n[tls]\nmode = \"implicit\"\ncert_file = %q\nkey_file = %q\n", cert, key)
	}

	root, upload, home := w.pub, "upload_dir = \"incoming\"\n", w.home
	if st.store != nil {
		root, upload, home = "/pub", "", "/alice"
		fmt.Fprintf(&b, "\n[storage]\nbackend = \"s3\"\nendpoint = %q\nbucket = %q\npath_style = true\n",
			st.store.endpoint, st.store.bucket)
		fmt.Fprintf(&b, "access_key = %q\nsecret_key = %q\n", st.store.accessKey, st.store.secretKey)
	}

	fmt.Fprintf(&b, "\n[anonymous]\nenabled = true\nroot = %q\n%s", root, upload)

	if l := st.dropBox; l != nil {
		fmt.Fprintf(&b, "max_upload_size = \"%d\"\nupload_quota = \"%d\"\nupload_max_files = %d\n", l.maxUploadSize, l.quota, l.maxFiles)
		fmt.Fprintf(&b, "upload_max_depth = %d\nupload_rate = %d\nupload_bytes_per_hour = \"%d\"\n", l.maxDepth, l.rate, l.bytesPerHour)
	} else {
		fmt.Fprintf(&b, "max_upload_size = \"0\"\n")
	}

	if st.sessionLimit != "" {
		fmt.Fprintf(&b, "\n[bandwidth]\nsession_download = %q\nsession_upload = %q\n", st.sessionLimit, st.sessionLimit)
	}

	fmt.Fprintf(&b, "\n[ban]\nmax_failures = %d\nwindow = \"10m\"\nduration = \"1h\"\n", st.maxFailures)
	fmt.Fprintf(&b, "\n[admin]\nlisten = \"127.0.0.1:0\"\npprof = %t\n", st.pprof)
	fmt.Fprintf(&b, "\n[[users]]\nname = %q\npassword = %q\nhome = %q\naccess = \"read-write\"\n", aliceName, s.hash, home)

	return b.String(), nil
}

// logLine is the part of wharf's JSON log lines the suite reads.
type logLine struct {
	Time    time.Time `json:"time"`
	Logger  string    `json:"logger"`
	Msg     string    `json:"msg"`
	Address string    `json:"address"`
	Remote  string    `json:"remote"`
	IP      string    `json:"ip"`
}

// waitListening reads the log until "wharf started", taking the control and
// admin addresses from the "listening" lines.
func (w *wharf) waitListening(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)

	for time.Now().Before(deadline) {
		lines, _ := w.logLines()
		for _, l := range lines {
			switch {
			case l.Logger == "server" && l.Msg == "listening":
				w.addr = l.Address
			case l.Logger == "admin" && l.Msg == "admin listening":
				w.admin = l.Address
			}
		}

		for _, l := range lines {
			if l.Msg == "wharf started" && w.addr != "" && w.admin != "" {
				return nil
			}
		}

		select {
		case <-w.exited:
			out, _ := os.ReadFile(filepath.Join(w.dir, "stderr.txt"))

			return fmt.Errorf("wharf exited at start-up (%w): %s", w.waitErr, strings.TrimSpace(string(out)))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}

	return errors.New("wharf did not log \"wharf started\" within 10 s")
}

// logLines parses wharf.log.
func (w *wharf) logLines() ([]logLine, error) {
	f, err := os.Open(filepath.Join(w.dir, "wharf.log"))
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)

	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}

	return out, sc.Err()
}

// pid is the wharf process's ID.
func (w *wharf) pid() int { return w.cmd.Process.Pid }

// stop sends SIGTERM and waits up to 10 s, then kills. Safe to call twice.
func (w *wharf) stop() {
	if w == nil || w.cmd == nil || w.cmd.Process == nil {
		return
	}

	select {
	case <-w.exited:
		return
	default:
	}

	_ = w.cmd.Process.Signal(syscall.SIGTERM)

	select {
	case <-w.exited:
	case <-time.After(10 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.exited
	}
}

// metrics scrapes /metrics into a map from series ("name{labels}") to value.
func (w *wharf) metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.admin+"/metrics", http.NoBody)
	if err != nil {
		return nil, err
	}

	resp, err := w.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}

	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)

	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}

		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}

		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}

	return out, sc.Err()
}

// metric reads one series.
func (w *wharf) metric(ctx context.Context, series string) (float64, error) {
	m, err := w.metrics(ctx)
	if err != nil {
		return 0, err
	}

	v, ok := m[series]
	if !ok {
		return 0, fmt.Errorf("no series %s in /metrics", series)
	}

	return v, nil
}

// usage is what must not leak: open file descriptors (/proc/PID/fd) and
// goroutines (go_goroutines, which counts the one serving the scrape).
type usage struct {
	fds        int
	goroutines int
}

func (u usage) String() string { return fmt.Sprintf("%d fds, %d goroutines", u.fds, u.goroutines) }

func (w *wharf) usage(ctx context.Context) (usage, error) {
	fds, err := procstat.FDs(w.pid())
	if err != nil {
		return usage{}, err
	}

	g, err := w.metric(ctx, "go_goroutines")
	if err != nil {
		return usage{}, err
	}

	return usage{fds: fds, goroutines: int(g)}, nil
}

// baseline is the least usage seen in a few samples, so that a scrape's own
// connection caught closing does not inflate it.
func (w *wharf) baseline(ctx context.Context) (usage, error) {
	var base usage

	for i := range 3 {
		u, err := w.usage(ctx)
		if err != nil {
			return usage{}, err
		}

		if i == 0 {
			base = u
		}

		base.fds = min(base.fds, u.fds)
		base.goroutines = min(base.goroutines, u.goroutines)

		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return usage{}, err
		}
	}

	return base, nil
}

// settle polls usage until it is back at base or within has passed. It
// returns the last usage and how long it took.
func (w *wharf) settle(ctx context.Context, base usage, within time.Duration) (usage, time.Duration, bool) {
	start := time.Now()

	for {
		u, err := w.usage(ctx)
		if err == nil && u.fds <= base.fds && u.goroutines <= base.goroutines {
			return u, time.Since(start), true
		}

		if time.Since(start) > within || ctx.Err() != nil {
			return u, time.Since(start), false
		}

		_ = sleep(ctx, 50*time.Millisecond)
	}
}

// memory reads VmRSS and VmHWM (peak RSS) of wharf, in bytes.
func (w *wharf) memory() (rss, peak int64, err error) {
	m, err := procstat.ReadMemory(w.pid())

	return m.RSS, m.Peak, err
}

// heapInUse reads wharf's Go heap in use (go_memstats_heap_inuse_bytes).
// With collect, it first makes wharf run a garbage collection, through
// /debug/pprof/heap?gc=1 (settings.pprof): an idle Go program may not
// collect for two minutes, so only then does the figure show what is live.
func (w *wharf) heapInUse(ctx context.Context, collect bool) (int64, error) {
	if collect {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.admin+"/debug/pprof/heap?gc=1", http.NoBody)
		if err != nil {
			return 0, err
		}

		resp, err := w.http.Do(req)
		if err != nil {
			return 0, err
		}

		readAllFrom(resp.Body)
		_ = resp.Body.Close()

		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET /debug/pprof/heap?gc=1: %s", resp.Status)
		}
	}

	v, err := w.metric(ctx, "go_memstats_heap_inuse_bytes")

	return int64(v), err
}

// warmPassive makes wharf open a listener on every port of its passive
// range: one session per port, all from 127.0.0.1, each holding an EPSV
// reservation (one address holds at most one reservation per port, so they
// get different ports whatever order wharf hands them out in). wharf keeps a
// passive port listening (a descriptor and a goroutine) for 10 s after its
// last use, so baselines are taken after this.
func (w *wharf) warmPassive(ctx context.Context) error {
	n := w.pasv[1] - w.pasv[0] + 1
	if n > w.set.maxClientsPerIP {
		return fmt.Errorf("warm-up: %d passive ports need as many sessions from one address, max_clients_per_ip is %d", n, w.set.maxClientsPerIP)
	}

	conns, err := loginMany(ctx, w, n, n, func(int) net.IP { return localIP(1) }, "anonymous", "warm@up")
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	defer func() {
		for _, c := range conns {
			quit(c)
		}
	}()

	seen := make(map[int]bool)
	for _, c := range conns {
		port, err := c.EPSV()
		if err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}

		seen[port] = true
	}

	if len(seen) != n {
		return fmt.Errorf("warm-up: %d sessions from one address got only %d different passive ports", n, len(seen))
	}

	return nil
}

// tempFiles lists wharf's atomic-upload temporary files under dir: the
// one-off ones (".wharf-upload-*"), which no upload may leave behind, and
// the parts kept for an account to resume an interrupted upload
// (".wharf-upload-part-*", upload_resume_window), at most one per account
// and interrupted name.
func tempFiles(dir string) (temps, parts []string, err error) {
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}

		switch name := d.Name(); {
		case strings.HasPrefix(name, ".wharf-upload-part-"):
			parts = append(parts, path)
		case strings.HasPrefix(name, ".wharf-upload-"):
			temps = append(temps, path)
		}

		return nil
	})

	return temps, parts, err
}

// freePortRange finds n consecutive free ports below Linux's ephemeral range
// (32768+), so client sockets never take them. It binds 127.0.0.1, which fails
// while anyone listens on the port on any address.
func freePortRange(n int) (int, error) {
	for range 50 {
		bn, err := rand.Int(rand.Reader, big.NewInt(int64(32000-n-20000)))
		if err != nil {
			return 0, err
		}

		lo := 20000 + int(bn.Int64())
		free := true

		var held []net.Listener
		for p := lo; p < lo+n && free; p++ {
			l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				free = false

				break
			}

			held = append(held, l)
		}

		for _, l := range held {
			_ = l.Close()
		}

		if free {
			return lo, nil
		}
	}

	return 0, errors.New("no free passive port range found")
}

// certificate writes a self-signed ECDSA certificate for 127.0.0.1 once and
// returns the paths of its PEM files.
func (s *suite) certificate() (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(s.root, "cert.pem"), filepath.Join(s.root, "key.pem")
	if _, err := os.Stat(certFile); err == nil {
		return certFile, keyFile, nil
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}

	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wharf stress"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}

	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}

	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}

	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return "", "", err
	}

	return certFile, keyFile, writePEM(keyFile, "PRIVATE KEY", keyDER)
}

func writePEM(path, kind string, der []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}

	if err := pem.Encode(f, &pem.Block{Type: kind, Bytes: der}); err != nil {
		_ = f.Close()

		return err
	}

	return f.Close()
}

// version asks the binary for its version.
func version(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "-version").Output()
	if err != nil {
		return "unknown"
	}

	return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "wharf"))
}

// readAllFrom drains r and reports how many bytes came.
func readAllFrom(r io.Reader) int64 {
	n, _ := io.Copy(io.Discard, r)

	return n
}

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Lstat(path)

	return err == nil
}
