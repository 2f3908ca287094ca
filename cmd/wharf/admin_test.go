package main

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// [admin] token_file and hosts reach the running admin listener.
func TestAdminTokenAndHosts(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub := mkdirs(t, dir, "pub")[0]
	token := writeFile(t, dir, "admin.token", "\n  0123456789abcdef0123456789abcdef\n")
	cfgPath := writeFile(t, dir, "wharf.toml", fmt.Sprintf(`listen = "127.0.0.1:0"
passive_ports = [27250, 27259]

[log]
format = "json"

[admin]
listen = "127.0.0.1:0"
token_file = %q
hosts = ["wharf.internal"]

[anonymous]
root = %q
`, token, pub))

	wharf := startRun(t, []string{"-config", cfgPath}, nil)
	if wharf.admin == "" {
		t.Fatal("no 'admin listening' line")
	}

	tests := []struct {
		name, path, host, authorization string
		code                            int
	}{
		{"no token", "/sessions", wharf.admin, "", http.StatusUnauthorized},
		{"the file's token, trimmed", "/sessions", wharf.admin, "Bearer 0123456789abcdef0123456789abcdef", http.StatusOK},
		{"a configured name", "/metrics", "wharf.internal:9121", "Bearer 0123456789abcdef0123456789abcdef", http.StatusOK},
		{"another name", "/sessions", "evil.example", "Bearer 0123456789abcdef0123456789abcdef", http.StatusMisdirectedRequest},
		{"the probe", "/healthz", "evil.example", "", http.StatusOK},
	}

	for _, tt := range tests {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+wharf.admin+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}

		req.Host = tt.host
		if tt.authorization != "" {
			req.Header.Set("Authorization", tt.authorization)
		}

		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}

		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()

		if res.StatusCode != tt.code {
			t.Errorf("%s: GET %s with Host %q = %d, want %d", tt.name, tt.path, tt.host, res.StatusCode, tt.code)
		}
	}
}
