package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
)

// POST /reload calls Options.Reload and answers what happened as JSON; it
// is guarded like every path but the probes', and nothing but a same-origin
// or non-browser POST reloads.
func TestReload(t *testing.T) {
	t.Parallel()

	var calls atomic.Int64
	refuse := errors.New(`wharf.toml: listen: want host:port such as "0.0.0.0:2121"`)

	newHandler := func(token string, err error, restart ...string) http.Handler {
		opts := testOptions()
		opts.Token = token
		opts.Reload = func() ([]string, error) {
			calls.Add(1)

			return restart, err
		}

		return New(opts, zap.NewNop()).Handler()
	}

	tests := []struct {
		name          string
		h             http.Handler
		method        string
		authorization string
		header        [2]string // one more request header
		code          int
		want          reloadAnswer // for 200 and 422
		reloads       bool
	}{
		{
			name: "a POST reloads", h: newHandler("", nil), method: http.MethodPost,
			code: http.StatusOK, want: reloadAnswer{Result: "reloaded"}, reloads: true,
		},
		{
			name: "a POST names the keys that wait for a restart", h: newHandler("", nil, "listen", "tls.mode"),
			method: http.MethodPost, code: http.StatusOK, reloads: true,
			want: reloadAnswer{Result: "reloaded", Restart: []string{"listen", "tls.mode"}},
		},
		{
			name: "a refused reload says why", h: newHandler("", refuse), method: http.MethodPost,
			code: http.StatusUnprocessableEntity, want: reloadAnswer{Result: "refused", Error: refuse.Error()}, reloads: true,
		},
		{
			name: "GET is refused", h: newHandler("", nil), method: http.MethodGet, code: http.StatusMethodNotAllowed,
		},
		{
			name: "without the token it is refused", h: newHandler(testToken, nil), method: http.MethodPost,
			code: http.StatusUnauthorized,
		},
		{
			name: "with the token it reloads", h: newHandler(testToken, nil), method: http.MethodPost,
			authorization: "Bearer " + testToken, code: http.StatusOK, want: reloadAnswer{Result: "reloaded"}, reloads: true,
		},
		{
			name: "a browser's cross-site POST is refused", h: newHandler("", nil), method: http.MethodPost,
			header: [2]string{"Sec-Fetch-Site", "cross-site"}, code: http.StatusForbidden,
		},
		{
			name: "a POST from another origin is refused", h: newHandler("", nil), method: http.MethodPost,
			header: [2]string{"Origin", "http://evil.example"}, code: http.StatusForbidden,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := calls.Load()

			req := httptest.NewRequest(tt.method, "/reload", nil)
			req.Host = testHost
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			if tt.header[0] != "" {
				req.Header.Set(tt.header[0], tt.header[1])
			}

			res, body := send(t, tt.h, req)
			if res.StatusCode != tt.code {
				t.Fatalf("%s /reload: status %d, want %d (body %q)", tt.method, res.StatusCode, tt.code, body)
			}

			if reloaded := calls.Load() != before; reloaded != tt.reloads {
				t.Errorf("Reload called: %t, want %t", reloaded, tt.reloads)
			}

			switch tt.code {
			case http.StatusOK, http.StatusUnprocessableEntity:
				if ct := res.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}

				var got reloadAnswer
				if err := json.Unmarshal([]byte(body), &got); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if got.Result != tt.want.Result || got.Error != tt.want.Error || !slices.Equal(got.Restart, tt.want.Restart) {
					t.Errorf("answer %+v, want %+v", got, tt.want)
				}
			case http.StatusMethodNotAllowed:
				if allow := res.Header.Get("Allow"); !strings.Contains(allow, "POST") {
					t.Errorf("Allow %q, want POST", allow)
				}
			}
		})
	}
}

// Without Options.Reload, there is no /reload.
func TestNoReloadWithoutAFunc(t *testing.T) {
	t.Parallel()

	res, body := get(t, New(testOptions(), zap.NewNop()).Handler(), http.MethodPost, "/reload")
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("POST /reload without Options.Reload: status %d, want 404 (body %q)", res.StatusCode, body)
	}
}

// SetToken changes the token from the next request on: the old one is
// refused, and "" requires none.
func TestSetToken(t *testing.T) {
	t.Parallel()

	opts := testOptions()
	opts.Token = testToken
	s := New(opts, zap.NewNop())
	h := s.Handler()

	const renewed = "fedcba9876543210-renewed"

	steps := []struct {
		name          string
		token         string // SetToken's argument, before the request; "-" for no call
		authorization string
		code          int
	}{
		{"the first token is served", "-", "Bearer " + testToken, http.StatusOK},
		{"the first token is refused once changed", renewed, "Bearer " + testToken, http.StatusUnauthorized},
		{"the new token is served", "-", "Bearer " + renewed, http.StatusOK},
		{"no token is refused", "-", "", http.StatusUnauthorized},
		{"without a token, none is needed", "", "", http.StatusOK},
	}

	for _, step := range steps {
		if step.token != "-" {
			s.SetToken(step.token)
		}

		res, body := request(t, h, http.MethodGet, "/sessions", testHost, step.authorization)
		if res.StatusCode != step.code {
			t.Errorf("%s: status %d, want %d (body %q)", step.name, res.StatusCode, step.code, body)
		}
	}
}
