package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// profileAll takes a CPU profile of wharf for each row that has a CPU
// column, repeating the row's scenario while the profile runs, and writes
// cpu-<id>.pprof and, when the go tool is at hand, cpu-<id>.txt (pprof -top,
// by flat then by cumulative time).
// It returns notes for the report.
func profileAll(ctx context.Context, b *bench, rows []scenario, w *target, dir string, o options,
	stderr io.Writer,
) []string {
	if w.admin == "" {
		return []string{"profiles: wharf's admin listener is off"}
	}

	var notes []string

	for _, sc := range rows {
		if sc.cpuUnit == "" || sc.s3 {
			continue
		}

		fmt.Fprintf(stderr, "profile %-9s wharf, %s...\n", sc.id, o.profileFor)

		runs, err := profileRow(ctx, b, sc, w, dir, o)
		if err != nil {
			notes = append(notes, fmt.Sprintf("profile %s: %s", sc.id, oneLine(err)))

			continue
		}

		notes = append(notes, fmt.Sprintf("profile %s: cpu-%s.pprof (the scenario ran %d times in %s)",
			sc.id, sc.id, runs, o.profileFor))
	}

	return notes
}

func profileRow(ctx context.Context, b *bench, sc scenario, w *target, dir string, o options) (int, error) {
	if err := w.serve(ctx, b.setupFor(sc)); err != nil {
		return 0, err
	}

	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", w.admin, int(o.profileFor.Seconds()))

	type reply struct {
		body []byte
		err  error
	}

	done := make(chan reply, 1)

	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil) //nolint:gosec // wharf's admin listener, on loopback
		if err != nil {
			done <- reply{err: err}

			return
		}

		resp, err := http.DefaultClient.Do(req) //nolint:gosec // wharf's admin listener, on loopback
		if err != nil {
			done <- reply{err: err}

			return
		}
		defer resp.Body.Close()

		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}

		done <- reply{body: body, err: err}
	}()

	runs := 0

	var got reply

loop:
	for range 100000 {
		select {
		case got = <-done:
			break loop
		default:
		}

		rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		_, err := sc.run(rctx, b, w)

		cancel()

		if err != nil {
			got = <-done

			return runs, err
		}

		runs++
	}

	if got.body == nil && got.err == nil {
		got = <-done
	}

	if got.err != nil {
		return runs, got.err
	}

	prof := filepath.Join(dir, "cpu-"+sc.id+".pprof")
	if err := os.WriteFile(prof, got.body, 0o644); err != nil { //nolint:gosec // results are meant to be read
		return runs, fmt.Errorf("write profile: %w", err)
	}

	if goTool, err := exec.LookPath("go"); err == nil {
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()

		var text []byte

		for _, sort := range []string{"-flat", "-cum"} {
			top, err := exec.CommandContext(tctx, goTool, "tool", "pprof", "-top", sort, "-nodecount=40", o.wharf, prof).Output()
			if err != nil {
				break
			}

			text = append(text, top...)
			text = append(text, '\n')
		}

		if len(text) > 0 {
			_ = os.WriteFile(filepath.Join(dir, "cpu-"+sc.id+".txt"), text, 0o644) //nolint:gosec // results are meant to be read
		}
	}

	return runs, nil
}
