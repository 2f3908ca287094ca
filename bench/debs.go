package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The peers that conflict with vsftpd as installed packages (pure-ftpd,
// ProFTPD) come from Debian's packages all the same: apt-get download fetches
// the .deb files, with the libraries they need that are not installed, and
// dpkg -x unpacks them into a cache folder, from which they run. Nothing is
// installed, and a second run reuses the cache.

// peerBinary is a server program, either installed or unpacked in the cache.
type peerBinary struct {
	path    string   // the program
	root    string   // the unpacked tree, "" when installed
	env     []string // LD_LIBRARY_PATH into the unpacked tree, when it has libraries
	version string   // the Debian package's version
	from    string   // "installed" or the cache folder, for the notes
}

// cacheDir is $XDG_CACHE_HOME/wharf-bench, or ~/.cache/wharf-bench.
func cacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache folder: %w", err)
	}

	return filepath.Join(base, "wharf-bench"), nil
}

// findPeer returns the installed program sbin (/usr/sbin/NAME) when there is
// one, else fetches packages (the first is the one that holds the program)
// into the cache. It fails with a sentence that says what to do.
func findPeer(ctx context.Context, sbin string, packages ...string) (peerBinary, error) {
	installed := filepath.Join("/usr/sbin", sbin)
	if _, err := os.Stat(installed); err == nil {
		return peerBinary{path: installed, version: installedVersion(ctx, packages[0]), from: "installed"}, nil
	}

	cache, err := cacheDir()
	if err != nil {
		return peerBinary{}, err
	}

	dir := filepath.Join(cache, packages[0])
	root := filepath.Join(dir, "root")
	p := peerBinary{path: filepath.Join(root, "usr", "sbin", sbin), root: root, from: dir}

	stamp := filepath.Join(dir, "unpacked")
	if b, err := os.ReadFile(stamp); err == nil {
		p.version = strings.TrimSpace(string(b))
	} else if err := unpack(ctx, dir, packages); err != nil {
		return peerBinary{}, err
	}

	libs := filepath.Join(root, "usr", "lib", "x86_64-linux-gnu")
	if arch, err := exec.CommandContext(ctx, "dpkg-architecture", "-qDEB_HOST_MULTIARCH").Output(); err == nil {
		libs = filepath.Join(root, "usr", "lib", strings.TrimSpace(string(arch)))
	}

	if _, err := os.Stat(libs); err == nil {
		p.env = []string{"LD_LIBRARY_PATH=" + libs}
	}

	if missing := missingLibraries(ctx, p); len(missing) > 0 {
		return peerBinary{}, fmt.Errorf("%s needs libraries that are neither installed nor unpacked: %s (remove %s to fetch again)",
			sbin, strings.Join(missing, ", "), dir)
	}

	if p.version == "" {
		b, _ := os.ReadFile(stamp)
		p.version = strings.TrimSpace(string(b))
	}

	return p, nil
}

// unpack downloads packages, and the libraries they need that are not
// installed, into dir and unpacks them into dir/root. It writes dir/unpacked,
// holding the first package's version, last, so that an interrupted run
// starts over.
func unpack(ctx context.Context, dir string, packages []string) error {
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg", "dpkg-query"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is not on PATH: this machine can't fetch Debian packages", tool)
		}
	}

	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("cache: %w", err)
	}

	debs := filepath.Join(dir, "debs")
	if err := os.MkdirAll(debs, 0o755); err != nil { //nolint:gosec // a cache others may read
		return fmt.Errorf("cache: %w", err)
	}

	all := withLibraries(ctx, packages)

	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()

	get := exec.CommandContext(ctx, "apt-get", append([]string{"download", "-q"}, all...)...) //nolint:gosec // package names from this file and apt-cache
	get.Dir = debs

	if out, err := get.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download %s: %w: %s (run apt-get update first, or check the network)",
			strings.Join(all, " "), err, lastLines(out, 3))
	}

	files, err := filepath.Glob(filepath.Join(debs, "*.deb"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("apt-get download %s left no .deb file", strings.Join(all, " "))
	}

	root := filepath.Join(dir, "root")

	for _, f := range files {
		if out, err := exec.CommandContext(ctx, "dpkg", "-x", f, root).CombinedOutput(); err != nil {
			return fmt.Errorf("dpkg -x %s: %w: %s", filepath.Base(f), err, lastLines(out, 3))
		}
	}

	version, err := exec.CommandContext(ctx, "dpkg-deb", "-f", firstDeb(files, packages[0]), "Version").Output() //nolint:gosec // a file apt-get wrote
	if err != nil {
		version = []byte("(version unknown)")
	}

	if err := os.WriteFile(filepath.Join(dir, "unpacked"), version, 0o644); err != nil { //nolint:gosec // a cache others may read
		return fmt.Errorf("cache: %w", err)
	}

	return nil
}

// firstDeb is the .deb file of package pkg among files (named pkg_version_arch.deb).
func firstDeb(files []string, pkg string) string {
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), pkg+"_") {
			return f
		}
	}

	return files[0]
}

// withLibraries adds to packages the libraries they depend on, three levels
// deep, that dpkg does not list as installed.
func withLibraries(ctx context.Context, packages []string) []string {
	all := slices.Clone(packages)
	level := packages

	for range 3 {
		var next []string

		for _, pkg := range level {
			out, err := exec.CommandContext(ctx, "apt-cache", "depends", "--no-recommends", "--no-suggests",
				"--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances", pkg).Output()
			if err != nil {
				continue
			}

			for line := range strings.Lines(string(out)) {
				kind, name, ok := strings.Cut(strings.TrimSpace(line), ": ")
				if !ok || strings.TrimPrefix(kind, "|") != "Depends" || !strings.HasPrefix(name, "lib") {
					continue
				}

				if !slices.Contains(all, name) && !installed(ctx, name) {
					all = append(all, name)
					next = append(next, name)
				}
			}
		}

		level = next
	}

	return all
}

// installed reports whether dpkg has pkg installed.
func installed(ctx context.Context, pkg string) bool {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && bytes.HasSuffix(out, []byte("installed")) && !bytes.Contains(out, []byte("not-installed"))
}

// installedVersion is an installed package's version.
func installedVersion(ctx context.Context, pkg string) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil || len(out) == 0 {
		return "(version unknown)"
	}

	return string(out)
}

// missingLibraries runs ldd on the program with its environment and lists
// the libraries it does not find; nil when ldd is missing.
func missingLibraries(ctx context.Context, p peerBinary) []string {
	cmd := exec.CommandContext(ctx, "ldd", p.path) //nolint:gosec // the peer's program
	cmd.Env = append(os.Environ(), p.env...)

	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		if _, ok := errors.AsType[*exec.Error](err); ok {
			return nil // no ldd: the start will tell
		}

		return []string{"(ldd failed: " + oneLine(err) + ")"}
	}

	var missing []string

	for line := range strings.Lines(string(out)) {
		if name, _, ok := strings.Cut(strings.TrimSpace(line), " => not found"); ok {
			missing = append(missing, name)
		}
	}

	return missing
}

// lastLines is the end of a command's output, on one line.
func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}

	return strings.Join(lines, " / ")
}
