package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"wharf/auth"
	"wharf/config"
	"wharf/server"
)

// doctorTimeout bounds each connection doctor makes back to itself.
const doctorTimeout = 2 * time.Second

// passiveSample is how many passive ports doctor checks at most: the first,
// the last, and the others spread between them.
const passiveSample = 10

// doctor checks the configuration in effect like check-config (the folders
// served, as the user doctor runs as, included), then whether
// clients could use it: it starts the server's listeners (the control port
// through the server itself, a sample of the passive ports as the FTP engine
// binds them for PASV) and connects back to each through public_host, from
// this machine. It prints one line per check, OK, NOTE, WARN or PROBLEM with
// what to fix, and fails when it found a PROBLEM. WARN lines are about
// choices that are right for some setups (a LAN, a test) and wrong for others,
// and about secret files that others may read or change (config.LooseFiles).
// Beside a running wharf of this configuration (the control port greets with
// its banner), the passive ports that wharf holds for transfers are NOTEs:
// they are its own, not another program's.
func doctor(ctx context.Context, args, env []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wharf doctor", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the TOML configuration `file`, as FILE (default: $WHARF_CONFIG, else none)")
	overrides := addOverrideFlags(fs)
	fs.Usage = usageFunc(fs, `Usage: wharf doctor [FILE] [-listen ADDR] [-public-host HOST] [-log-level LEVEL]

Check the configuration as check-config does, then whether clients can
reach the control port and the passive ports through public_host, from
this machine. Print a line per check (OK, NOTE, WARN, or PROBLEM with what
to fix) and exit 1 when there is a PROBLEM. Beside a running wharf, the
ports it holds are reported as its own, not as problems.
`)

	path, ok, err := commandConfig(fs, configPath, args, stdout)
	if !ok {
		return err
	}

	src := config.Sources{File: path, Env: env, Flags: overrides()}
	r := &report{w: stdout}

	cfg, unknown, err := loadConfig(src)
	for _, name := range unknown {
		r.warn("unknown environment variable %s is ignored", name)
	}

	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			r.problem("%s", line)
		}

		return fmt.Errorf("doctor found %d problem(s) in the configuration", r.problems)
	}

	r.ok("%s is valid", configName(src))

	for _, f := range cfg.LooseFiles(src.Path()) {
		r.warn("%s", f)
	}

	checkFolders(r, cfg)

	if cfg.Storage.S3() {
		c := cfg.Storage
		c.AbandonedUploadAge = config.Duration{} // a check only: no janitor sweeping the bucket
		st, err := openStorage(ctx, c, env, zap.NewNop())
		if up, why := st.ready(); err == nil && !up {
			err = fmt.Errorf("storage: %s: %s", st.store, why)
		}

		if st.store != nil {
			defer st.store.Close()
		}

		if err != nil {
			r.problem("%v: check storage.endpoint, storage.bucket and the credentials", err)
		} else {
			r.ok("storage: bucket %q answers", cfg.Storage.Bucket)
		}
	}

	local := localAddresses()
	checkAddresses(r, cfg, local)
	checkReachability(ctx, r, cfg, local)

	if r.problems > 0 {
		return fmt.Errorf("doctor found %d problem(s): see the PROBLEM lines", r.problems)
	}

	fmt.Fprintln(stdout, "no problems found")

	return nil
}

// report prints doctor's findings, one line each, and counts the problems.
type report struct {
	w        io.Writer
	problems int
}

func (r *report) line(tag, format string, args ...any) {
	fmt.Fprintf(r.w, "%-8s%s\n", tag, fmt.Sprintf(format, args...))
}

func (r *report) ok(format string, args ...any)   { r.line("OK", format, args...) }
func (r *report) note(format string, args ...any) { r.line("NOTE", format, args...) }
func (r *report) warn(format string, args ...any) { r.line("WARN", format, args...) }

func (r *report) problem(format string, args ...any) {
	r.problems++
	r.line("PROBLEM", format, args...)
}

// checkFolders reports each folder wharf serves that the user doctor runs
// as can't use (config.UnusableFolders), or that all of them are fine.
func checkFolders(r *report, cfg config.Config) {
	folders := cfg.Folders()
	if len(folders) == 0 {
		return // s3: prefixes, no folders
	}

	bad := cfg.UnusableFolders()
	for _, u := range bad {
		r.problem("%s: run wharf as a user that can, or change the folder's owner or mode", u)
	}

	if len(bad) == 0 {
		r.ok("uid %d can read the %d folder(s) served, and write in those that sessions write in", os.Geteuid(), len(folders))
	}
}

// checkAddresses checks what the configuration alone tells: the address PASV
// announces, active mode behind NAT, and the passive port range.
func checkAddresses(r *report, cfg config.Config, local []netip.Addr) {
	public, _ := netip.ParseAddr(cfg.PublicIP)

	switch {
	case cfg.PublicIP == "":
		var outside []netip.Addr
		for _, a := range local {
			if a.Is4() && !server.Unroutable(a) {
				outside = append(outside, a)
			}
		}

		if len(outside) == 0 {
			r.warn("public_host is empty and this machine's addresses (%s) are all private: PASV replies announce "+
				"the address a client connected to, which clients outside this network can't reach; "+
				"set public_host (WHARF_PUBLIC_HOST) to the address or DNS name clients use", joinAddrs(local))
		} else {
			r.ok("public_host is empty: PASV replies announce the address each client connected to, such as %s", outside[0])
		}
	case server.Unroutable(public):
		r.warn("public_host %q is %s, a private or loopback address: only clients on this network can open "+
			"passive data connections; set public_host to the address clients use, unless they are all on this network",
			cfg.PublicHost, cfg.PublicIP)
	default:
		r.ok("public_host %q is %s, a public address", cfg.PublicHost, cfg.PublicIP)
	}

	if cfg.PublicIP != "" && !slices.Contains(local, public) {
		r.note("public_host %s is not an address of this machine: wharf is behind NAT, a container's port "+
			"publishing or a load balancer", cfg.PublicIP)

		if cfg.ActiveMode {
			r.warn("active_mode is on behind NAT: for PORT/EPRT wharf connects out to the client from a translated " +
				"address, which often fails; set active_mode = false (WHARF_ACTIVE_MODE=false)")
		}
	}

	lo, hi := cfg.PassiveRange()
	overlap := false

	for _, l := range []struct{ key, addr string }{{"listen", cfg.Listen}, {"admin.listen", cfg.Admin.Listen}} {
		if port := listenPort(l.addr); port != 0 && port >= lo && port <= hi {
			overlap = true
			r.problem("passive_ports %d-%d include port %d of %s: PASV would hand clients a port that another "+
				"listener holds; move the range or the listener", lo, hi, port, l.key)
		}
	}

	if !overlap {
		r.ok("passive_ports %d-%d do not overlap the control or admin port", lo, hi)
	}

	if n := hi - lo + 1; n < cfg.MaxClients/4 {
		r.warn("passive_ports %d-%d hold %d ports for max_clients %d: at busy times PASV may find no free port; "+
			"give the range at least %d ports (max_clients / 4), or lower max_clients", lo, hi, n, cfg.MaxClients,
			cfg.MaxClients/4)
	} else {
		r.ok("passive_ports %d-%d hold %d ports for max_clients %d", lo, hi, n, cfg.MaxClients)
	}
}

// checkReachability starts the server on the control address and listeners
// on a sample of the passive ports, then connects to each through public_host
// (or an address of this machine), and compares the client addresses the
// listeners saw.
func checkReachability(ctx context.Context, r *report, cfg config.Config, local []netip.Addr) {
	listenHost, _, _ := net.SplitHostPort(cfg.Listen)

	target := cfg.PublicIP
	if target == "" {
		// PASV then announces the address the client connected to: the
		// listen address, or any address of this machine.
		target = listenHost
		if anyHost(listenHost) {
			target = ownAddress(local)
		}

		r.note("public_host is empty: checking reachability at %s, an address of this machine", target)
	}

	targetAddr, _ := netip.ParseAddr(target)
	targetLocal := slices.Contains(local, targetAddr.Unmap())

	if targetLocal {
		r.note("the checks below connect from this machine to %s; a firewall between clients and this machine "+
			"can still block them", target)
	} else {
		r.note("the checks below connect from this machine to %s, as clients would; some routers don't loop a "+
			"machine's connections to its own public address back, and then fail them here only", target)
	}

	srv, busy, err := startDoctorServer(cfg)
	if err != nil {
		r.problem("the server can't start with this configuration: %v", err)

		return
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	defer func() {
		shutdownNow(srv)
		<-served
	}()

	// Beside a running wharf of this configuration, the passive ports it
	// holds for transfers are its own, not another program's.
	wharfHere := false

	port := srv.Addr().(*net.TCPAddr).Port
	if busy {
		configured := listenPort(cfg.Listen)
		if wharfHere = runningWharf(ctx, cfg); wharfHere {
			r.note("control port %d is in use by a wharf running here (it greets with this configuration's banner): "+
				"doctor started its server on the free port %d instead; the control port check goes to port %d, to "+
				"the running wharf, and passive ports it holds are reported as its own", configured, port, configured)
		} else {
			r.note("control port %d is in use (is wharf running?): doctor started its server on the free port %d "+
				"instead; the control port check goes to port %d, to what runs there", configured, port, configured)
		}
		port = configured
	}

	seen := map[string][]string{} // client address -> the checks that saw it

	addr := net.JoinHostPort(target, strconv.Itoa(port))
	gctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	conn, _, err := greet(gctx, addr, cfg.TLS.Mode.Is(server.TLSImplicit))
	cancel()

	switch {
	case err != nil && targetLocal && listenHost != target && !anyHost(listenHost):
		r.problem("control port: %s does not greet (%v): listen %q accepts connections to %s only; "+
			"listen on 0.0.0.0, or set public_host to %s", addr, err, cfg.Listen, listenHost, listenHost)
	case err != nil:
		r.problem("control port: %s does not greet (%v): forward or publish port %d to this machine "+
			"(docker run -p %d:%d, a Service port in Kubernetes) and open it in the firewall", addr, err, port, port, port)
	default:
		if !busy {
			for _, s := range srv.Sessions() {
				seen[unmap(s.ClientIP)] = append(seen[unmap(s.ClientIP)], "control port")
			}
		}

		quit(conn)
		r.ok("control port: %s answers 220", addr)
	}

	lo, hi := cfg.PassiveRange()
	held := ""
	if busy {
		held = fmt.Sprintf(", or the server on port %d for a transfer", port)
	}

	for _, res := range probePassive(ctx, listenHost, target, samplePorts(lo, hi)) {
		where := net.JoinHostPort(target, strconv.Itoa(res.port))

		switch {
		case res.listenErr != nil && wharfHere:
			r.note("passive port %d: in use by the wharf running here (a passive transfer holds it, or did moments "+
				"ago); not checked", res.port)
		case res.listenErr != nil:
			r.problem("passive port %d: can't listen on it (%v): another program holds it%s; PASV can't use it, "+
				"so choose passive_ports that nothing else uses", res.port, res.listenErr, held)
		case res.dialErr != nil && targetLocal && listenHost != target && !anyHost(listenHost):
			r.problem("passive port %d: %s is not reachable (%v): passive ports listen on the listen address %s only, "+
				"as the control port does; listen on 0.0.0.0, or set public_host to %s", res.port, where, res.dialErr,
				listenHost, listenHost)
		case res.dialErr != nil:
			fix := fmt.Sprintf("publish the whole passive range %d-%d to this machine, port for port (docker run "+
				"-p %d-%d:%d-%d; a Service port for each in Kubernetes), and open it in the firewall", lo, hi, lo, hi, lo, hi)
			if cfg.PublicHost == "" {
				fix += "; set public_host to the address clients use"
			}

			r.problem("passive port %d: %s is not reachable (%v): %s", res.port, where, res.dialErr, fix)
		case !res.ours:
			r.problem("passive port %d: %s reaches another program, not this machine's port %d: forward the port "+
				"unchanged to this machine", res.port, where, res.port)
		default:
			r.ok("passive port %d: reachable at %s", res.port, where)
			seen[res.client] = append(seen[res.client], fmt.Sprintf("port %d", res.port))
		}
	}

	checkClientAddress(r, seen)
}

// runningWharf reports whether the server on the configured control port
// is a wharf of this configuration: it greets with this configuration's
// banner. It asks on this machine (127.0.0.1 when wharf listens on every
// address).
func runningWharf(ctx context.Context, cfg config.Config) bool {
	addr, err := probeAddress(cfg.Listen)
	if err != nil {
		return false
	}

	gctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()

	conn, greeting, err := greet(gctx, addr, cfg.TLS.Mode.Is(server.TLSImplicit))
	if err != nil {
		return false
	}

	quit(conn)

	return slices.Equal(replyLines(greeting), replyLines(cfg.Greeting()))
}

// replyLines splits a reply's text into its lines, as a client reads them:
// without line ends or the white space around them.
func replyLines(text string) []string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}

	return lines
}

// checkClientAddress compares the client addresses that the listeners saw:
// wharf accepts a passive data connection only from the address of the
// session's control connection, so they must all be the same.
func checkClientAddress(r *report, seen map[string][]string) {
	switch len(seen) {
	case 0:
	case 1:
		for ip := range seen {
			r.ok("every connection from this machine arrived from %s: client addresses are preserved", ip)
		}
	default:
		var parts []string
		for _, ip := range slices.Sorted(maps.Keys(seen)) {
			parts = append(parts, fmt.Sprintf("%s on %s", ip, strings.Join(seen[ip], ", ")))
		}

		r.problem("connections from this machine arrived from different addresses (%s): wharf accepts a data "+
			"connection only from its control connection's address, so transfers would fail; preserve client IPs "+
			"(Kubernetes: externalTrafficPolicy: Local; a proxy or load balancer: keep the source address, no SNAT)",
			strings.Join(parts, "; "))
	}
}

// startDoctorServer starts the server with cfg, moving it to a free port when
// the configured one is taken (by a running wharf, most likely); busy says so.
// It writes no transfer log and logs nothing.
func startDoctorServer(cfg config.Config) (srv *server.Server, busy bool, err error) {
	accounts, err := auth.New(accountOptions(cfg))
	if err != nil {
		return nil, false, fmt.Errorf("accounts: %w", err)
	}

	opts := serverOptions(cfg)
	opts.TransferLog = "" // doctor moves no file
	// doctor connects from this machine to see whether the network lets
	// clients through; [access] may refuse this machine, and would then hide
	// what the network does behind a 421.
	opts.AccessAllow, opts.AccessDeny = nil, nil

	start := func() (*server.Server, error) {
		srv, err := server.New(opts, accounts, zap.NewNop())
		if err != nil {
			return nil, err
		}

		return srv, srv.Listen()
	}

	srv, err = start()
	if errors.Is(err, syscall.EADDRINUSE) {
		host, _, _ := net.SplitHostPort(cfg.Listen)
		opts.Listen = net.JoinHostPort(host, "0")
		busy = true
		srv, err = start()
	}

	if err != nil {
		return nil, false, err
	}

	return srv, busy, nil
}

// passiveResult is what checking one passive port found.
type passiveResult struct {
	port      int
	listenErr error  // the port could not be bound
	dialErr   error  // the port could not be reached
	ours      bool   // what answered is the listener doctor started
	client    string // the address the listener saw the connection come from
}

// probePassive checks the ports at once, and returns the results in order.
func probePassive(ctx context.Context, listenHost, target string, ports []int) []passiveResult {
	results := make([]passiveResult, len(ports))

	var wg sync.WaitGroup
	for i, port := range ports {
		wg.Go(func() { results[i] = probePort(ctx, listenHost, target, port) })
	}
	wg.Wait()

	return results
}

// probePort listens on port as wharf does for PASV (on the listen address,
// listenHost, every address when that is 0.0.0.0 or empty), connects to
// target:port, and checks that the listener answers with a random token, so
// that a NAT forwarding the port elsewhere is told apart.
func probePort(ctx context.Context, listenHost, target string, port int) passiveResult {
	res := passiveResult{port: port}

	l, err := (&net.ListenConfig{}).Listen(ctx, "tcp", net.JoinHostPort(listenHost, strconv.Itoa(port)))
	if err != nil {
		res.listenErr = err

		return res
	}

	token := make([]byte, 16)
	_, _ = rand.Read(token)

	clients := make(chan string, 1)
	done := make(chan struct{})

	go func() {
		defer close(done)

		for {
			c, err := l.Accept()
			if err != nil {
				return // closed below
			}

			_ = c.SetDeadline(time.Now().Add(doctorTimeout))
			_, _ = c.Write(token)

			select {
			case clients <- unmap(hostOf(c.RemoteAddr())):
			default:
			}

			_ = c.Close()
		}
	}()

	defer func() {
		_ = l.Close()
		<-done
	}()

	dctx, cancel := context.WithTimeout(ctx, doctorTimeout)
	defer cancel()

	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", net.JoinHostPort(target, strconv.Itoa(port)))
	if err != nil {
		res.dialErr = err

		return res
	}

	_ = conn.SetDeadline(time.Now().Add(doctorTimeout))
	got := make([]byte, len(token))
	_, err = io.ReadFull(conn, got)
	_ = conn.Close()

	if err == nil && bytes.Equal(got, token) {
		res.ours = true
		res.client = <-clients
	}

	return res
}

// samplePorts picks up to passiveSample ports of lo-hi: all of a small
// range, else the first, the last and others spread evenly between them.
func samplePorts(lo, hi int) []int {
	var ports []int

	if hi-lo+1 <= passiveSample {
		for p := lo; p <= hi; p++ {
			ports = append(ports, p)
		}

		return ports
	}

	for i := range passiveSample {
		ports = append(ports, lo+i*(hi-lo)/(passiveSample-1))
	}

	return slices.Compact(ports)
}

// localAddresses lists this machine's IP addresses, loopback included.
func localAddresses() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}

	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}

	return out
}

// ownAddress picks the address of this machine that clients would most
// likely connect to: a public IPv4 one, else a private one, else loopback.
func ownAddress(local []netip.Addr) string {
	var private string

	for _, a := range local {
		switch {
		case !a.Is4() || a.IsLoopback() || a.IsLinkLocalUnicast():
		case !server.Unroutable(a):
			return a.String()
		case private == "":
			private = a.String()
		}
	}

	if private != "" {
		return private
	}

	return "127.0.0.1"
}

// anyHost reports whether host, in a listen address, means every address.
func anyHost(host string) bool {
	a, err := netip.ParseAddr(host)

	return host == "" || (err == nil && a.IsUnspecified())
}

// listenPort returns the port of a host:port address, 0 if there is none.
func listenPort(addr string) int {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}

	n, _ := strconv.Atoi(port)

	return n
}

// hostOf returns the IP address of a connection's end.
func hostOf(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}

	host, _, _ := net.SplitHostPort(addr.String())

	return host
}

// unmap writes an IPv4-mapped IPv6 address as IPv4, so addresses compare.
func unmap(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		return a.Unmap().String()
	}

	return ip
}

func joinAddrs(addrs []netip.Addr) string {
	var s []string
	for _, a := range addrs {
		if a.Is4() && !a.IsLoopback() {
			s = append(s, a.String())
		}
	}

	if len(s) == 0 {
		return "none but loopback"
	}

	return strings.Join(s, ", ")
}
