package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"
	"time"

	"wharf/admin"
	"wharf/config"
	"wharf/vfs"
)

// snapshotPoll is how often snapshot-wait asks the admin listener again.
const snapshotPoll = time.Second

// snapshotRequestTimeout bounds one request to the admin listener.
const snapshotRequestTimeout = 5 * time.Second

// snapshotWait answers "wharf snapshot-wait -path /debian -copy debian.1":
// it asks the running server's admin listener (found from the
// configuration, as healthcheck -ready finds it, with [admin] token_file's
// token) for GET /snapshots until no session holds that copy, for a sync
// script that deletes the old copy next. It fails, without waiting, when
// the admin listener can't be reached or refuses, when the path is not a
// snapshot of the running server, or when the copy is the one the link
// names now (deleting it would break the tree); and when -timeout passes.
func snapshotWait(ctx context.Context, args, env []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("wharf snapshot-wait", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the TOML configuration `file`, as FILE (default: $WHARF_CONFIG, else none)")
	optional := fs.String("optional-config", "", "read this configuration `file` if it exists (as the server's -optional-config)")
	addr := fs.String("addr", "", "`host:port` of the admin listener (default: [admin] listen, on 127.0.0.1 when it is every address)")
	snapPath := fs.String("path", "", "the snapshot, as `PATH` in [[snapshots]] (\"/debian\"); required")
	copyName := fs.String("copy", "", "the old `COPY` to wait for, as the link named it (\"debian.1\"); required")
	timeout := fs.Duration("timeout", 0, "give up, exit 1, after this `duration` (\"10m\"); 0 waits as long as sessions hold the copy")
	fs.Usage = usageFunc(fs, `Usage: wharf snapshot-wait [FILE] -path PATH -copy COPY [-timeout D] [-addr HOST:PORT]

Wait until no session of the running wharf holds COPY of the snapshot folder
PATH ([[snapshots]]), then exit 0, so that a sync script deletes the old copy
only then. It asks the admin listener's /snapshots every second (at -addr,
else [admin] listen, with the token of [admin] token_file). It exits 1 at
once when the admin listener is off or can't be reached, when PATH is not a
snapshot of the running server or COPY is its current copy, and when
-timeout passes.
`)

	file, ok, err := commandConfig(fs, configPath, args, stdout)
	if !ok {
		return err
	}

	switch {
	case *snapPath == "":
		return &usageError{cmd: fs.Name(), msg: "-path is required: the snapshot, such as -path /debian"}
	case *copyName == "":
		return &usageError{cmd: fs.Name(), msg: "-copy is required: the old copy, such as -copy debian.1"}
	case *timeout < 0:
		return &usageError{cmd: fs.Name(), msg: fmt.Sprintf("-timeout %s: must be 0 or more", *timeout)}
	}

	// Merge, not Load: only [admin] is needed, and a folder briefly
	// unavailable must not stop a sync script.
	cfg, _, err := config.Sources{File: configFile(file, *optional), Env: env}.Merge()
	if err != nil {
		return fmt.Errorf("snapshot-wait: configuration: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}

	target := *addr
	if target == "" {
		if cfg.Admin.Listen == "" {
			return errors.New("snapshot-wait: no admin listener to ask: set [admin] listen (WHARF_ADMIN_LISTEN), or give -addr")
		}

		if target, err = probeAddress(cfg.Admin.Listen); err != nil {
			return fmt.Errorf("snapshot-wait: admin %w", err)
		}
	}

	token := ""
	if cfg.Admin.TokenFile != "" {
		data, err := os.ReadFile(cfg.Admin.TokenFile)
		if err != nil {
			return fmt.Errorf("snapshot-wait: admin.token_file: %w", err)
		}

		token = strings.TrimSpace(string(data))
	}

	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}

	w := waiter{addr: target, token: token, path: path.Clean("/" + *snapPath), copy: vfs.CopyName(*copyName), out: stdout}

	return w.wait(ctx, *timeout)
}

// waiter polls one admin listener for one copy.
type waiter struct {
	addr, token string
	path, copy  string
	out         io.Writer
}

func (w waiter) wait(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: snapshotRequestTimeout}
	said := -1

	for {
		n, err := w.sessions(ctx, client)
		switch {
		case err != nil && ctx.Err() == nil:
			return err
		case err == nil && n == 0:
			fmt.Fprintf(w.out, "free: %s %s: no session holds it\n", w.path, w.copy)

			return nil
		case err == nil && n != said:
			fmt.Fprintf(w.out, "waiting: %s %s: %d %s\n", w.path, w.copy, n, plural(n, "session holds it", "sessions hold it"))
			said = n
		}

		select {
		case <-ctx.Done():
			if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) && said < 0 {
				return fmt.Errorf("snapshot-wait: no answer from the admin listener %s within -timeout %s", w.addr, timeout)
			}

			if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("snapshot-wait: %s %s: still held by %d %s after -timeout %s", w.path, w.copy, said,
					plural(said, "session", "sessions"), timeout)
			}

			return fmt.Errorf("snapshot-wait: %w", ctx.Err())
		case <-time.After(snapshotPoll):
		}
	}
}

// sessions asks /snapshots how many sessions hold the copy.
func (w waiter) sessions(ctx context.Context, client *http.Client) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.addr+"/snapshots", http.NoBody)
	if err != nil {
		return 0, fmt.Errorf("snapshot-wait: %s: %w", w.addr, err)
	}

	req.Header.Set("Accept", "application/json")

	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}

	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("snapshot-wait: admin listener %s: %w", w.addr, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))

		return 0, fmt.Errorf("snapshot-wait: admin listener %s: GET /snapshots: %d %s", w.addr, resp.StatusCode,
			strings.Join(strings.Fields(string(body)), " "))
	}

	var list []admin.Snapshot
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&list); err != nil {
		return 0, fmt.Errorf("snapshot-wait: admin listener %s: GET /snapshots: %w", w.addr, err)
	}

	known := make([]string, 0, len(list))
	for _, sn := range list {
		known = append(known, sn.Path)
		if sn.Path != w.path {
			continue
		}

		if sn.Current == w.copy {
			return 0, fmt.Errorf("snapshot-wait: %s %s is the copy the link names now: flip the link first, then wait for the old copy",
				w.path, w.copy)
		}

		for _, c := range sn.Copies {
			if c.Copy == w.copy {
				return c.Sessions, nil
			}
		}

		return 0, nil
	}

	if len(known) == 0 {
		return 0, fmt.Errorf("snapshot-wait: %s is not a snapshot of the server at %s: it has no [[snapshots]]", w.path, w.addr)
	}

	return 0, fmt.Errorf("snapshot-wait: %s is not a snapshot of the server at %s (its [[snapshots]] paths: %s)", w.path, w.addr,
		strings.Join(known, ", "))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}

	return many
}
