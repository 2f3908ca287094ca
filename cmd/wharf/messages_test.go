package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"wharf/config"
	"wharf/internal/ftptest"
	"wharf/server"
)

// greeting connects to addr and returns the text of the 220 reply, its
// lines joined with "\n" without their "220-" prefixes.
func greeting(t *testing.T, addr string) string {
	t.Helper()

	d := net.Dialer{Timeout: 5 * time.Second}

	conn, err := d.DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}

	c := ftptest.NewCtl(t, conn)
	defer c.Cmd("QUIT")

	return c.Expect(220)
}

// anonymousLogin logs in anonymously at addr and returns the text of the
// 230 reply.
func anonymousLogin(t *testing.T, addr string) string {
	t.Helper()

	c := ftptest.Dial(t, addr, nil)
	defer c.Cmd("QUIT")

	c.Must(331, "USER anonymous")

	return c.Must(230, "PASS guest@")
}

// SIGHUP reads banner_file and login_message_file again; a reload that finds
// banner_file broken is refused, names the key and the file, and keeps the
// running greeting. Signals reach the whole test binary, so this test is not
// parallel.
func TestReloadReadsTheMessageFilesAgain(t *testing.T) {
	dir := t.TempDir()
	pub := mkdirs(t, dir, "pub")[0]
	banner := writeFile(t, dir, "banner.txt", "Welcome to the mirror.\r\nIt syncs at :00.\r\n")
	login := writeFile(t, dir, "login.txt", "Be nice.\n")
	logPath := filepath.Join(dir, "wharf.log")

	cfg := fmt.Sprintf("listen = \"127.0.0.1:0\"\npassive_ports = [27400, 27409]\nbanner_file = %q\n\n"+
		"[log]\nformat = \"json\"\nfile = %q\n\n[anonymous]\nroot = %q\nlogin_message_file = %q\n", banner, logPath, pub, login)
	cfgPath := writeFile(t, dir, "wharf.toml", cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-config", cfgPath}, nil, strings.NewReader(""), io.Discard, io.Discard)
	}()

	logs := logWatcher{t: t, path: logPath}
	addr, _ := logs.waitFor("listening")["address"].(string)

	if got, want := greeting(t, addr), "Welcome to the mirror.\nIt syncs at :00."; got != want {
		t.Errorf("greeting = %q, want %q", got, want)
	}
	if got, want := anonymousLogin(t, addr), "Be nice."; got != want {
		t.Errorf("anonymous login reply = %q, want %q", got, want)
	}

	// The files change, the configuration does not: a reload reads them again.
	writeFile(t, dir, "banner.txt", "This mirror moved.\nUse ftp2.example.org.\n")
	writeFile(t, dir, "login.txt", "Be nicer.\n")
	hangUp(t)
	logs.waitFor("configuration reloaded")

	moved := "This mirror moved.\nUse ftp2.example.org."
	if got := greeting(t, addr); got != moved {
		t.Errorf("greeting after the reload = %q, want %q", got, moved)
	}
	if got, want := anonymousLogin(t, addr), "Be nicer."; got != want {
		t.Errorf("anonymous login reply after the reload = %q, want %q", got, want)
	}

	// A line that would end the 220 reply: the reload is refused.
	writeFile(t, dir, "banner.txt", "Welcome\n220 x\n")
	hangUp(t)

	refused := logs.waitFor("reload refused, keeping the running configuration")
	reason, _ := refused["error"].(string)
	if want := fmt.Sprintf(`banner_file %q: line 2: "220 x" starts like a reply code`, banner); !strings.Contains(reason, want) {
		t.Errorf("refusal = %q, want it to contain %q", reason, want)
	}

	if got := greeting(t, addr); got != moved {
		t.Errorf("greeting after a refused reload = %q, want the running %q", got, moved)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func hangUp(t *testing.T) {
	t.Helper()

	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// A banner_file with a line that would end the 220 reply stops start-up,
// naming the key and the file.
func TestRunRefusesABannerFileWithAReplyLine(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	pub := mkdirs(t, dir, "pub")[0]
	banner := writeFile(t, dir, "banner.txt", "Welcome\n220 x\n")
	cfgPath := writeFile(t, dir, "wharf.toml", fmt.Sprintf("listen = \"127.0.0.1:0\"\nbanner_file = %q\n[anonymous]\nroot = %q\n",
		banner, pub))

	err := run(context.Background(), []string{"-config", cfgPath}, nil, strings.NewReader(""), io.Discard, io.Discard)

	want := fmt.Sprintf(`%s: banner_file %q: line 2: "220 x" starts like a reply code`, cfgPath, banner)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("run() = %v, want %q", err, want)
	}
}

// The keys of issue 11 reach the server's and the accounts' options.
func TestOptionsCarryTheListingAndMessages(t *testing.T) {
	t.Parallel()

	cfg := config.Default()
	cfg.BannerFile, cfg.BannerText = "banner.txt", "Welcome\nto the mirror"
	cfg.Anonymous.LoginMessageText = "Be nice."
	cfg.Listing = config.Listing{
		Symlinks: config.SymlinkMode(server.SymlinksAsTargets), Hide: []string{"*.tmp"}, Deny: []string{".~tmp~"},
		MessageFile: "README.mirror", Recursive: true,
	}

	opts := serverOptions(cfg)

	if opts.Banner != "Welcome\nto the mirror" || opts.LoginMessage != "Be nice." {
		t.Errorf("Banner, LoginMessage = %q, %q; want banner_file's and login_message_file's texts", opts.Banner, opts.LoginMessage)
	}

	l := opts.Listing
	if l.Symlinks != server.SymlinksAsTargets || !slices.Equal(l.Hide, []string{"*.tmp"}) ||
		!slices.Equal(l.Deny, []string{".~tmp~"}) || l.MessageFile != "README.mirror" || !l.Recursive {
		t.Errorf("Listing = %+v, want [listing]'s values", l)
	}

	if !accountOptions(cfg).AnonymousWorldReadableOnly {
		t.Error("AnonymousWorldReadableOnly = false with the default world_readable_only = true")
	}

	cfg.Storage.Backend = config.BackendS3
	if accountOptions(cfg).AnonymousWorldReadableOnly {
		t.Error("AnonymousWorldReadableOnly = true with s3, where objects have no mode bits")
	}

	cfg.Storage.Backend = config.BackendDisk
	cfg.Anonymous.WorldReadableOnly = false
	if accountOptions(cfg).AnonymousWorldReadableOnly {
		t.Error("AnonymousWorldReadableOnly = true with world_readable_only = false")
	}
}
