package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"wharf/config"
	"wharf/server"
)

// healthTimeout bounds the whole health probe: connect, TLS, greeting.
const healthTimeout = 5 * time.Second

// healthcheck connects to the control port and succeeds on a 220 greeting
// within healthTimeout, so a container image needs no shell or curl for its
// HEALTHCHECK. The address is -addr, or else the listen address of the
// configuration (-config, WHARF_CONFIG, WHARF_LISTEN...), with an
// every-address host such as 0.0.0.0 probed on 127.0.0.1. With implicit TLS
// it does the handshake first. It prints one line either way.
//
// With -ready it asks the admin listener's /readyz instead (at -addr, or
// [admin] listen), and succeeds on 200: wharf accepts connections and its
// storage answers. That is readiness, for a load balancer; the greeting is
// liveness, which a store outage does not end.
func healthcheck(ctx context.Context, args, env []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wharf healthcheck", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the TOML configuration `file`, as FILE (default: $WHARF_CONFIG, else none)")
	optional := fs.String("optional-config", "", "read this configuration `file` if it exists (as the server's -optional-config)")
	addr := fs.String("addr", "", "`host:port` to probe (default: the configured listen address, or with -ready [admin] listen; on 127.0.0.1 when it is every address)")
	ready := fs.Bool("ready", false, "ask the admin listener's /readyz: succeed only while wharf is ready to serve (its storage answers)")
	fs.Usage = usageFunc(fs, `Usage: wharf healthcheck [FILE] [-addr HOST:PORT] [-ready]

Connect to the control port and exit 0 on a 220 greeting within 5 s, 1
otherwise, printing one line either way (for a container HEALTHCHECK). The
address is -addr, else the configured listen address, on 127.0.0.1 when
that is every address. With -ready, ask the admin listener's /readyz
instead and exit 0 only while wharf is ready (its storage answers).
`)

	path, ok, err := commandConfig(fs, configPath, args, stdout)
	if !ok {
		return err
	}

	// Merge, not Load: the probe needs only listen and tls.mode, and must not
	// fail because a host name or a folder is briefly unavailable.
	cfg, _, err := config.Sources{File: configFile(path, *optional), Env: env}.Merge()
	if err != nil {
		return fmt.Errorf("unhealthy: configuration: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}

	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()

	if *ready {
		return readiness(ctx, *addr, cfg.Admin.Listen, stdout)
	}

	target := *addr
	if target == "" {
		if target, err = probeAddress(cfg.Listen); err != nil {
			return fmt.Errorf("unhealthy: %w", err)
		}
	}

	conn, greeting, err := greet(ctx, target, cfg.TLS.Mode.Is(server.TLSImplicit))
	if err != nil {
		return fmt.Errorf("unhealthy: %s: %w", target, err)
	}

	quit(conn)

	fmt.Fprintf(stdout, "healthy: %s: 220 %s\n", target, greeting)

	return nil
}

// readiness asks /readyz on the admin listener at addr, or else at the
// configured [admin] listen, and prints its answer: "ready: ADDR: ready", or
// fails with "not ready: ADDR: 503 <reason>".
func readiness(ctx context.Context, addr, adminListen string, stdout io.Writer) error {
	if addr == "" {
		if adminListen == "" {
			return errors.New("not ready: no admin listener to ask: set [admin] listen (WHARF_ADMIN_LISTEN), or give -addr")
		}

		var err error
		if addr, err = probeAddress(adminListen); err != nil {
			return fmt.Errorf("not ready: admin %w", err)
		}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", http.NoBody)
	if err != nil {
		return fmt.Errorf("not ready: %s: %w", addr, err)
	}

	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return fmt.Errorf("not ready: %s: %w", addr, err)
	}
	defer resp.Body.Close()

	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	text := strings.Join(strings.Fields(string(body)), " ")

	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("not ready: %s: %d %s", addr, resp.StatusCode, text)
	}

	fmt.Fprintf(stdout, "ready: %s: %s\n", addr, text)

	return nil
}

// probeAddress turns a listen address into one to connect to: a host that
// means every address ("", 0.0.0.0, ::) becomes 127.0.0.1.
func probeAddress(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", listen, err)
	}

	if port == "0" {
		return "", fmt.Errorf("listen %q has port 0 (a free port picked at start): give -addr", listen)
	}

	if anyHost(host) {
		host = "127.0.0.1"
	}

	return net.JoinHostPort(host, port), nil
}

// greet connects to an FTP control port and reads its greeting, which must
// be 220 (RFC 959 4.2; a multi-line one too), before ctx ends. With
// implicitTLS it does the TLS handshake first. It returns the open
// connection and the greeting's text.
func greet(ctx context.Context, addr string, implicitTLS bool) (net.Conn, string, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, "", err
	}

	// One deadline for everything after the dial, from ctx.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	if implicitTLS {
		// The probe checks that wharf answers, not who it is: the certificate
		// may name a public host, not the address probed here, so it is not
		// verified. Nothing secret is sent over this connection.
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // see above
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = conn.Close()

			return nil, "", fmt.Errorf("TLS handshake: %w", err)
		}

		conn = tc
	}

	_, msg, err := textproto.NewReader(bufio.NewReader(conn)).ReadResponse(220)
	if err != nil {
		_ = conn.Close()

		if ctx.Err() != nil {
			return nil, "", fmt.Errorf("no greeting: %w", ctx.Err())
		}

		if te, ok := errors.AsType[*textproto.Error](err); ok {
			return nil, "", fmt.Errorf("greeting is %d %s, not 220", te.Code, te.Msg)
		}

		return nil, "", fmt.Errorf("read greeting: %w", err)
	}

	return conn, msg, nil
}

// quit ends an FTP control connection politely and closes it.
func quit(conn net.Conn) {
	_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(conn, "QUIT\r\n")
	_ = conn.Close()
}
