package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"wharf/internal/ftptest"
)

// healthcheckRun runs wharf healthcheck with args and env and returns its
// error and the line it printed.
func healthcheckRun(ctx context.Context, args, env []string) (string, error) {
	var out bytes.Buffer
	err := run(ctx, append([]string{"healthcheck"}, args...), env, nil, &out, io.Discard)

	return strings.TrimSpace(out.String()), err
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()

	pub := t.TempDir()
	env := []string{"WHARF_LISTEN=127.0.0.1:0", "WHARF_PASSIVE_PORTS=28800-28809", "WHARF_LOG_FORMAT=json", "WHARF_ANONYMOUS_ROOT=" + pub}
	s := startRun(t, nil, env)

	t.Run("healthy at -addr", func(t *testing.T) {
		t.Parallel()

		out, err := healthcheckRun(context.Background(), []string{"-addr", s.addr}, nil)
		if err != nil {
			t.Fatalf("healthcheck -addr %s = %v", s.addr, err)
		}
		if want := "healthy: " + s.addr + ": 220 wharf ready"; out != want {
			t.Errorf("printed %q, want %q", out, want)
		}
	})

	t.Run("healthy at the listen address of the environment", func(t *testing.T) {
		t.Parallel()

		_, port, _ := net.SplitHostPort(s.addr)
		if _, err := healthcheckRun(context.Background(), nil, []string{"WHARF_LISTEN=0.0.0.0:" + port}); err != nil {
			t.Fatalf("healthcheck with WHARF_LISTEN=0.0.0.0:%s = %v", port, err)
		}
	})

	t.Run("unhealthy at a closed port", func(t *testing.T) {
		t.Parallel()

		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()

		_, err = healthcheckRun(context.Background(), []string{"-addr", addr}, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "unhealthy: "+addr+": ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("healthcheck at a closed port = %v, want one line starting unhealthy", err)
		}
	})
}

// fakeControl listens on loopback and answers each connection with reply
// ("" says nothing) until the test ends.
func fakeControl(t *testing.T, reply string) string {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)

		for {
			c, err := l.Accept()
			if err != nil {
				return
			}

			_, _ = io.WriteString(c, reply)
			_, _ = io.Copy(io.Discard, c) // until the client closes
			_ = c.Close()
		}
	}()

	t.Cleanup(func() {
		_ = l.Close()
		<-done
	})

	return l.Addr().String()
}

func TestHealthcheckNeedsA220(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, reply, wantErr, wantOut string
	}{
		{name: "a multi-line greeting is healthy", reply: "220-welcome\r\n220 wharf ready\r\n", wantOut: "welcome\nwharf ready"},
		{name: "a refusal is unhealthy", reply: "421 too many connections\r\n", wantErr: "greeting is 421 too many connections, not 220"},
		{name: "silence is unhealthy", reply: "", wantErr: "no greeting: context deadline exceeded"},
		{name: "another protocol is unhealthy", reply: "HTTP/1.0 400 Bad Request\r\n", wantErr: "read greeting: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			addr := fakeControl(t, tt.reply)

			// The probe's own 5s limit, shortened through ctx for silence.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()

			out, err := healthcheckRun(ctx, []string{"-addr", addr}, nil)
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(out, tt.wantOut) {
					t.Errorf("healthcheck = %q, %v; want %q", out, err, tt.wantOut)
				}

				return
			}

			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("healthcheck = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// With implicit TLS, the probe does the handshake first; it can't verify the
// certificate, which names the public host.
func TestHealthcheckImplicitTLS(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	cert, key := ftptest.CertFiles(t)
	env := []string{
		"WHARF_LISTEN=127.0.0.1:0", "WHARF_PASSIVE_PORTS=28810-28819", "WHARF_LOG_FORMAT=json",
		"WHARF_ANONYMOUS_ROOT=" + mkdirs(t, dir, "pub")[0],
		"WHARF_TLS_MODE=implicit", "WHARF_TLS_CERT_FILE=" + cert, "WHARF_TLS_KEY_FILE=" + key,
	}
	s := startRun(t, nil, env)

	_, port, _ := net.SplitHostPort(s.addr)
	probeEnv := append(slices.Clone(env), "WHARF_LISTEN=0.0.0.0:"+port)
	if out, err := healthcheckRun(context.Background(), nil, probeEnv); err != nil {
		t.Fatalf("healthcheck with implicit TLS = %v", err)
	} else if !strings.HasSuffix(out, ": 220 wharf ready") {
		t.Errorf("printed %q", out)
	}

	// Without the handshake, the server never greets.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := healthcheckRun(ctx, []string{"-addr", s.addr}, nil); err == nil {
		t.Error("a plain probe of an implicit-TLS port was healthy")
	}
}

func TestProbeAddress(t *testing.T) {
	t.Parallel()

	tests := []struct{ listen, want, wantErr string }{
		{listen: "0.0.0.0:2121", want: "127.0.0.1:2121"},
		{listen: "[::]:2121", want: "127.0.0.1:2121"},
		{listen: ":21", want: "127.0.0.1:21"},
		{listen: "192.0.2.1:21", want: "192.0.2.1:21"},
		{listen: "[::1]:21", want: "[::1]:21"},
		{listen: "127.0.0.1:0", wantErr: "port 0"},
	}
	for _, tt := range tests {
		got, err := probeAddress(tt.listen)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("probeAddress(%q) = %q, %v; want an error with %q", tt.listen, got, err, tt.wantErr)
			}

			continue
		}

		if err != nil || got != tt.want {
			t.Errorf("probeAddress(%q) = %q, %v; want %q", tt.listen, got, err, tt.want)
		}
	}
}
