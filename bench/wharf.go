package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Session limits every server is given: room for the largest curve point
// (10,000 idle sessions, the warm-up sessions and the measuring clients),
// while no more than perAddress sessions come from one client address
// (127.0.0.2 onwards), well under maxPerAddress.
const (
	maxClients    = 12000
	maxPerAddress = 256
	perAddress    = 200
)

// startWharf writes wharf's configuration and starts it: the anonymous root
// with uploads into incoming/, one read-write account with a cost-10 bcrypt
// hash, explicit TLS, atomic uploads. Limits stay on, sized for the rows.
func startWharf(ctx context.Context, bin string, fx *fixtures, pin pinning, passive [2]int, profile bool) (*target, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}

	hp, err := freePort()
	if err != nil {
		return nil, err
	}

	var admin string

	if profile {
		ap, err := freePort()
		if err != nil {
			return nil, err
		}

		admin = "127.0.0.1:" + strconv.Itoa(ap)
	}

	abs, err := filepath.Abs(bin)
	if err != nil {
		return nil, fmt.Errorf("wharf binary: %w", err)
	}

	t := &target{name: "wharf", addr: "127.0.0.1:" + strconv.Itoa(port), http: "127.0.0.1:" + strconv.Itoa(hp),
		admin: admin, password: true, dir: fx.dir, now: setup{root: fx.root, tls: true},
		outPath: filepath.Join(fx.dir, "wharf.out"), comm: comm(bin), maxSessions: maxClients, sessionKiB: 64}
	t.launch = func(s setup) ([]string, error) {
		conf := filepath.Join(fx.dir, "wharf.toml")
		if err := os.WriteFile(conf, []byte(wharfConfig(fx, s.root, port, hp, passive, admin)), 0o600); err != nil {
			return nil, fmt.Errorf("write wharf config: %w", err)
		}

		return pin.serverCommand(abs, "-config", conf), nil
	}
	t.notes = append(t.notes, fmt.Sprintf("%s: anonymous root plus upload_dir, one read-write account (bcrypt "+
		"cost 10), tls explicit, upload_mode atomic, no upload_quota or upload_bytes_per_hour, "+
		"max_list_entries 200,000, passive %d-%d, max_clients %d, max_clients_per_ip %d, log level info to a file, "+
		"[http] listen on a port of its own (plain HTTP)",
		wharfVersion(ctx, bin), passive[0], passive[1], maxClients, maxPerAddress))

	if err := t.start(ctx); err != nil {
		return nil, err
	}

	if err := t.probe(ctx, "anonymous", "bench@example.com"); err != nil {
		t.stop()

		return nil, fmt.Errorf("wharf does not serve: %w%s", err, t.outTail())
	}

	if err := t.probe(ctx, fx.user, fx.pass); err != nil {
		t.stop()

		return nil, fmt.Errorf("wharf refuses the password account: %w%s", err, t.outTail())
	}

	if err := t.probeTLS(ctx, fx); err != nil {
		t.stop()

		return nil, fmt.Errorf("wharf does not serve FTPS: %w%s", err, t.outTail())
	}

	t.tls = true

	return t, nil
}

// wharfConfig is wharf's configuration for the tree whose anonymous root is
// root.
func wharfConfig(fx *fixtures, root string, port, httpPort int, passive [2]int, admin string) string {
	return fmt.Sprintf(`# written by wharf's benchmark (bench/wharf.go)
listen = "127.0.0.1:%d"
passive_ports = [%d, %d]
max_clients = %d
max_clients_per_ip = %d
banner = "wharf bench"
upload_mode = "atomic"
shutdown_timeout = "2s"
# The LIST curve lists 100,000 entries; the default allows exactly that many.
max_list_entries = 200000

[log]
level = "info"
file = %q

[tls]
mode = "explicit"
cert_file = %q
key_file = %q
# The password row logs in in clear, as it does with vsftpd (whose
# force_local_logins_ssl is off here): allow it for the account.
clear_text_accounts = true

[anonymous]
enabled = true
root = %q
upload_dir = "incoming"
max_upload_size = "4GiB"
# The drop box's byte limits suit a public box; the STOR rows store GiBs
# from one address (three 1 GiB uploads a round), each removed after its
# check. The other drop box limits keep their defaults.
upload_quota = "0"
upload_bytes_per_hour = "0"

[admin]
listen = %q
pprof = %t

# The same tree over plain HTTP, for the http row.
[http]
listen = "127.0.0.1:%d"

[[users]]
name = %q
password = %q
home = %q
access = "read-write"
`, port, passive[0], passive[1], maxClients, maxPerAddress, filepath.Join(fx.dir, "wharf.log"), fx.certFile,
		fx.keyFile, root, admin, admin != "", httpPort, fx.user, fx.hash, fx.home)
}

// comm is the command name the kernel keeps for a program: its first 15 bytes.
func comm(path string) string {
	c := filepath.Base(path)
	if len(c) > 15 {
		c = c[:15]
	}

	return c
}

// wharfVersion asks bin/wharf -version.
func wharfVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	out, err := exec.CommandContext(ctx, bin, "-version").Output()
	if err != nil {
		return "(version unknown: " + err.Error() + ")"
	}

	return strings.TrimSpace(string(out))
}
