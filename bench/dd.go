package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The stor-disk row is set against the disk's own speed for a durable
// write (issue 14): before each upload, dd writes as many bytes into the
// same folder with conv=fdatasync, on the server's core, untimed by the
// row. The record keeps dd's MB/s over the measurement (dd_mb_s in
// raw.jsonl) and the notes give each server's ratio to it.

// ddOnce writes size bytes of zeros into dir with dd, data on disk before
// it returns, and removes the file, its folder synced so that the
// removal's write-back (and a discard, on disks mounted with it) falls
// outside the next measurement. It returns the bytes and dd's wall time.
func ddOnce(ctx context.Context, b *bench, dir string, size int64) (int64, time.Duration, error) {
	const block = 1 << 20

	path := filepath.Join(dir, fmt.Sprintf("dd-%d.bin", b.seq.Add(1)))
	argv := b.pin.serverCommand("dd", "if=/dev/zero", "of="+path, fmt.Sprintf("bs=%d", block),
		fmt.Sprintf("count=%d", size/block), "conv=fdatasync", "status=none")

	defer removeSynced(path)

	start := time.Now()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput() //nolint:gosec // our own fixed command
	took := time.Since(start)

	if err != nil {
		return 0, 0, fmt.Errorf("dd: %w: %s", err, strings.TrimSpace(string(out)))
	}

	return size / block * block, took, nil
}

// removeSynced removes path and syncs its folder.
func removeSynced(path string) {
	_ = os.Remove(path)

	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// ddNote is the notes' line for the stor-disk row: dd's speed over the
// rounds and each server's median as a ratio of it; "" without the row.
func ddNote(res results, targets []*target) string {
	var dd []float64

	for _, recs := range res.recs["stor-disk"] {
		for _, r := range recs {
			if r.Error == "" && r.DiskDD != nil {
				dd = append(dd, *r.DiskDD)
			}
		}
	}

	if len(dd) == 0 {
		return ""
	}

	slices.Sort(dd)
	ref := median(dd)

	var ratios []string

	for _, t := range targets {
		s := summarize(res.recs["stor-disk"][t.name], "")
		if s.value.n > 0 {
			ratios = append(ratios, fmt.Sprintf("%s %.2f", t.name, s.value.median/ref))
		}
	}

	return fmt.Sprintf("stor-disk against the disk's own durable write: `dd if=/dev/zero bs=1M conv=fdatasync` of "+
		"the same size into the same folder, on the server's core, before each upload, wrote at a median %s MB/s "+
		"(%s–%s over %d runs); each server's median over dd's: %s. wharf syncs each upload before its 226 "+
		"(upload_sync = \"always\"); the peers answer before their data is on disk.",
		number(ref), number(dd[0]), number(dd[len(dd)-1]), len(dd), strings.Join(ratios, ", "))
}
