package admin

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// testToken is the token of the tests that set one.
const testToken = "0123456789abcdef-token"

// request sends method path with a Host header and, unless empty, an
// Authorization header, through h.
func request(t *testing.T, h http.Handler, method, path, host, authorization string) (*http.Response, string) {
	t.Helper()

	req := httptest.NewRequest(method, path, nil)
	req.Host = host
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}

	return send(t, h, req)
}

// A DNS-rebinding page names its own host: only addresses, localhost and
// the configured names get an answer, on every path but the probes'.
func TestHostHeader(t *testing.T) {
	t.Parallel()

	opts := testOptions()
	opts.Hosts = []string{"Wharf.Internal", "metrics.example."}
	h := New(opts, zap.NewNop()).Handler()

	tests := []struct {
		host string
		path string
		code int
	}{
		{"127.0.0.1:9121", "/sessions", http.StatusOK},
		{"127.0.0.1", "/sessions", http.StatusOK},
		{"192.0.2.10:80", "/sessions", http.StatusOK},
		{"[::1]:9121", "/sessions", http.StatusOK},
		{"[::1]", "/sessions", http.StatusOK},
		{"[2001:db8::7]:9121", "/metrics", http.StatusOK},
		{"localhost:9121", "/sessions", http.StatusOK},
		{"LocalHost.", "/", http.StatusOK},
		{"wharf.internal:9121", "/sessions", http.StatusOK},
		{"WHARF.INTERNAL", "/sessions", http.StatusOK},
		{"wharf.internal.:443", "/sessions", http.StatusOK},
		{"metrics.example", "/metrics", http.StatusOK},
		{"evil.example:9121", "/sessions", http.StatusMisdirectedRequest},
		{"evil.example", "/", http.StatusMisdirectedRequest},
		{"wharf.internal.evil.example", "/sessions", http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io:9121", "/sessions", http.StatusMisdirectedRequest},
		{"localhost.evil.example", "/metrics", http.StatusMisdirectedRequest},
		{"evil.example", "/nope", http.StatusMisdirectedRequest}, // refused before the mux says 404
		{"", "/sessions", http.StatusBadRequest},
		// The probes answer anyone: they tell only whether wharf is up.
		{"evil.example", "/healthz", http.StatusOK},
		{"", "/readyz", http.StatusOK},
	}

	for _, tt := range tests {
		t.Run(fmt.Sprintf("Host %q on %s is %d", tt.host, tt.path, tt.code), func(t *testing.T) {
			t.Parallel()

			res, body := request(t, h, http.MethodGet, tt.path, tt.host, "")
			if res.StatusCode != tt.code {
				t.Fatalf("status %d, want %d (body %q)", res.StatusCode, tt.code, body)
			}

			if tt.code != http.StatusOK && strings.Contains(body, "alice") {
				t.Errorf("a refused request got the sessions: %q", body)
			}
		})
	}
}

func TestToken(t *testing.T) {
	t.Parallel()

	opts := testOptions()
	opts.Pprof = true
	opts.Token = testToken
	h := New(opts, zap.NewNop()).Handler()

	tests := []struct {
		name          string
		path          string
		host          string
		authorization string
		code          int
	}{
		{"sessions without a token are refused", "/sessions", testHost, "", http.StatusUnauthorized},
		{"sessions with the token are served", "/sessions", testHost, "Bearer " + testToken, http.StatusOK},
		{"the scheme is case-insensitive", "/sessions", testHost, "bearer " + testToken, http.StatusOK},
		{"a wrong token is refused", "/sessions", testHost, "Bearer " + testToken + "x", http.StatusUnauthorized},
		{"a prefix of the token is refused", "/sessions", testHost, "Bearer " + testToken[:16], http.StatusUnauthorized},
		{"an empty token is refused", "/sessions", testHost, "Bearer ", http.StatusUnauthorized},
		{"the token alone is refused", "/sessions", testHost, testToken, http.StatusUnauthorized},
		{"Basic is refused", "/sessions", testHost, "Basic " + testToken, http.StatusUnauthorized},
		{"the page needs the token", "/", testHost, "", http.StatusUnauthorized},
		{"the page is served with the token", "/", testHost, "Bearer " + testToken, http.StatusOK},
		{"metrics need the token", "/metrics", testHost, "", http.StatusUnauthorized},
		{"metrics are served with the token", "/metrics", testHost, "Bearer " + testToken, http.StatusOK},
		{"pprof needs the token", "/debug/pprof/cmdline", testHost, "", http.StatusUnauthorized},
		{"an unknown path is refused before it is 404", "/nope", testHost, "", http.StatusUnauthorized},
		{"an unknown path with the token is 404", "/nope", testHost, "Bearer " + testToken, http.StatusNotFound},
		{"healthz needs no token", "/healthz", testHost, "", http.StatusOK},
		{"readyz needs no token", "/readyz", testHost, "", http.StatusOK},
		{"the token does not make an unknown host known", "/sessions", "evil.example", "Bearer " + testToken, http.StatusMisdirectedRequest},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			res, body := request(t, h, http.MethodGet, tt.path, tt.host, tt.authorization)
			if res.StatusCode != tt.code {
				t.Fatalf("status %d, want %d (body %q)", res.StatusCode, tt.code, body)
			}

			challenge := res.Header.Get("WWW-Authenticate")
			if tt.code == http.StatusUnauthorized {
				if !strings.HasPrefix(challenge, "Bearer") {
					t.Errorf("WWW-Authenticate %q, want a Bearer challenge", challenge)
				}

				if strings.Contains(body, "alice") || strings.Contains(body, "wharf_test") {
					t.Errorf("a refused request got data: %q", body)
				}
			} else if challenge != "" {
				t.Errorf("WWW-Authenticate %q on a %d", challenge, res.StatusCode)
			}
		})
	}
}

// The guards hold on a real listener, where an HTTP/1.0 request may come
// without a Host header at all; the probes still answer it.
func TestGuardsOnAListener(t *testing.T) {
	t.Parallel()

	opts := testOptions()
	opts.Token = testToken
	base := startServer(t, opts, zap.NewNop())
	addr := strings.TrimPrefix(base, "http://")

	raw := func(request string) string {
		t.Helper()

		conn, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()

		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, request); err != nil {
			t.Fatal(err)
		}

		status, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}

		return strings.TrimSpace(status)
	}

	for _, tt := range []struct{ name, request, status string }{
		{"HTTP/1.0 without Host is refused", "GET /sessions HTTP/1.0\r\nAuthorization: Bearer " + testToken + "\r\n\r\n", "HTTP/1.0 400 Bad Request"},
		{"HTTP/1.0 without Host gets healthz", "GET /healthz HTTP/1.0\r\n\r\n", "HTTP/1.0 200 OK"},
		{"a rebinding name is refused", "GET /sessions HTTP/1.1\r\nHost: evil.example:9121\r\nAuthorization: Bearer " + testToken + "\r\nConnection: close\r\n\r\n", "HTTP/1.1 421 Misdirected Request"},
		{"no token is refused", "GET /sessions HTTP/1.1\r\nHost: " + addr + "\r\nConnection: close\r\n\r\n", "HTTP/1.1 401 Unauthorized"},
		{"the token is accepted", "GET /sessions HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + testToken + "\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK"},
	} {
		if got := raw(tt.request); got != tt.status {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.status)
		}
	}
}

// A listener beyond loopback draws a warning unless it has a token.
func TestWarningBeyondLoopback(t *testing.T) {
	t.Parallel()

	for _, token := range []string{"", testToken} {
		core, logs := observer.New(zapcore.WarnLevel)
		s := New(Options{Listen: "0.0.0.0:0", Token: token}, zap.New(core))

		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}

		if err := s.Shutdown(t.Context()); err != nil {
			t.Fatal(err)
		}

		warned := logs.FilterMessageSnippet("not on a loopback address").Len() == 1
		if warned != (token == "") {
			t.Errorf("token %q: warned %t, want a warning only without a token", token, warned)
		}
	}
}
