package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"wharf/admin"
	"wharf/auth"
	"wharf/config"
	"wharf/internal/logsafe"
	"wharf/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usageText = `wharf: an FTP server for public mirrors and upload accounts.

Usage:
  wharf [FILE] [-listen ADDR] [-public-host HOST] [-log-level LEVEL]
        serve, with FILE as the TOML configuration; without a file, serve
        ./public anonymously, read-only, on 0.0.0.0:2121
        (-optional-config FILE reads FILE only if it exists)
  wharf check-config [FILE] [-print]
        validate the configuration and print every problem, and warn about
        secret files others can read; -print shows the configuration in
        effect (file, environment, flags) with secrets redacted
  wharf doctor [FILE]
        check the configuration, then whether clients can reach the control and
        passive ports through public_host; print what to fix
  wharf healthcheck [FILE] [-addr HOST:PORT] [-ready]
        exit 0 if the server answers 220 within 5s (for a container HEALTHCHECK);
        with -ready, if the admin listener's /readyz says ready (the storage answers)
  wharf snapshot-wait [FILE] -path PATH -copy COPY [-timeout D]
        wait until no session of the running server holds the old COPY of the
        [[snapshots]] folder PATH (asks the admin listener), for a sync script
  wharf hash-password
        read a password on stdin, print its bcrypt hash
  wharf version
        print the version (also -version)
  wharf help [COMMAND]
        print this help, or a command's with its flags (also -h or -help)

FILE may also be given as -config FILE. Exit status: 0 on success, 1 on a
failure, 2 for a command line wharf cannot run.

Environment: every key but [[users]] and [[snapshots]] can be set as WHARF_ and its path in
capitals, such as WHARF_LISTEN, WHARF_PUBLIC_HOST, WHARF_LOG_FORMAT=json,
WHARF_PASSIVE_PORTS=50000-50100, WHARF_LISTING_HIDE=*.tmp,README* (a list,
comma-separated) or WHARF_ANONYMOUS_ROOT. WHARF_CONFIG names the file when
neither FILE nor -config is given. Flags win over the environment, which
wins over the file.
Secrets: WHARF_STORAGE_ACCESS_KEY_FILE, WHARF_STORAGE_SECRET_KEY_FILE.

Reload: SIGHUP, POST /reload on the admin listener, or a change to a file
the configuration reads (looked at every watch_interval) loads it again;
SIGHUP and SIGUSR1 reopen the log files.
`

// logFlush is the longest a log line waits in the buffer.
const logFlush = 200 * time.Millisecond

// gcPercent is wharf's garbage collection target unless GOGC is set, and
// returnMemoryAfter how long after the last new connection the free heap
// is given back to the system (server.Options.ReturnMemoryAfter).
const (
	gcPercent         = 200
	returnMemoryAfter = 100 * time.Millisecond
)

// run is the whole program; main only reports its error. env is the
// environment in os.Environ form: only the WHARF_* entries are read.
func run(ctx context.Context, args, env []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "hash-password":
			return hashPassword(args[1:], stdin, stdout, stderr)
		case "check-config":
			return checkConfig(args[1:], env, stdout, stderr)
		case "healthcheck":
			return healthcheck(ctx, args[1:], env, stdout)
		case "doctor":
			return doctor(ctx, args[1:], env, stdout)
		case "snapshot-wait":
			return snapshotWait(ctx, args[1:], env, stdout)
		case "version":
			return printVersion(args[1:], stdout)
		case "help":
			return help(ctx, args[1:], env, stdout, stderr)
		}
	}

	fs := flag.NewFlagSet("wharf", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the TOML configuration `file`, as FILE (default: $WHARF_CONFIG, else none)")
	optional := fs.String("optional-config", "", "read this configuration `file` if it exists, else run on defaults and environment (FILE and -config win)")
	overrides := addOverrideFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = usageFunc(fs, usageText)

	args, err := parseArgs(fs, args, stdout)
	if err != nil {
		return helped(err)
	}

	if len(args) == 1 && mistypedCommand(args[0]) {
		return &usageError{cmd: "wharf", msg: fmt.Sprintf("unknown command %q, and no such configuration file: the commands are %s",
			args[0], strings.Join(subcommands, ", "))}
	}

	path, err := configArg(fs, *configPath, args)
	if err != nil {
		return err
	}

	if *showVersion {
		fmt.Fprintln(stdout, "wharf", buildVersion())

		return nil
	}

	src := config.Sources{File: configFile(path, *optional), Env: env, Flags: overrides()}

	cfg, unknown, err := loadConfig(src)
	if err != nil {
		return err
	}

	return serve(ctx, cfg, src, unknown, stdout)
}

// mistypedCommand reports whether arg, given where a configuration file
// may be, is rather a mistyped command: a bare word, and no such file.
func mistypedCommand(arg string) bool {
	if strings.ContainsAny(arg, "./"+string(os.PathSeparator)) {
		return false
	}

	_, err := os.Stat(arg) //nolint:gosec // the operator's own argument

	return err != nil
}

// configFile is the file to read: -config, else -optional-config when that
// file exists, else none (WHARF_CONFIG may still name one).
func configFile(path, optional string) string {
	if path != "" || optional == "" {
		return path
	}

	if st, err := os.Stat(optional); err == nil && st.Mode().IsRegular() {
		return optional
	}

	return ""
}

// addOverrideFlags adds to fs the flags that win over the environment and
// the file. The function returned gives the ones set, by configuration key.
func addOverrideFlags(fs *flag.FlagSet) func() map[string]string {
	keys := map[string]string{"listen": "listen", "public-host": "public_host", "log-level": "log.level"}

	fs.String("listen", "", "control connection `address` host:port (over $WHARF_LISTEN and the file)")
	fs.String("public-host", "", "IPv4 address or host `name` announced in PASV replies (over $WHARF_PUBLIC_HOST and the file)")
	fs.String("log-level", "", "`level` of the least important messages logged: debug, info, warn or error (over $WHARF_LOG_LEVEL and the file)")

	return func() map[string]string {
		set := map[string]string{}
		fs.Visit(func(f *flag.Flag) {
			if key, ok := keys[f.Name]; ok {
				set[key] = f.Value.String()
			}
		})

		return set
	}
}

// loadConfig builds and checks the configuration from src. It also returns
// the unknown WHARF_* variables, for a warning.
func loadConfig(src config.Sources) (config.Config, []string, error) {
	cfg, unknown, err := src.Load()
	if err != nil && src.Path() == "" {
		return cfg, unknown, fmt.Errorf("configuration without a file (defaults and WHARF_* variables): %w", err)
	}

	return cfg, unknown, err
}

// serve runs the server until ctx ends or SIGINT/SIGTERM arrives, then shuts
// down gracefully. SIGHUP loads the configuration again from src (the file,
// users_file, the same environment and flags) and reopens the log files;
// SIGUSR1 only reopens them (logrotate). A change to a file the
// configuration reads, seen every watch_interval, and POST /reload on the
// admin listener reload it too (see reloader). unknown lists the WHARF_*
// variables that name no key, logged as warnings.
func serve(ctx context.Context, cfg config.Config, src config.Sources, unknown []string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(signals)

	out, err := openLogOutput(cfg.Log.File, stdout)
	if err != nil {
		return err
	}
	defer out.Close()

	// Log lines are written in batches, at least every logFlush: a session
	// logs three lines or more, and a write call each was a tenth of the
	// CPU of a short session. Sync at the end writes what is left.
	buffered := &zapcore.BufferedWriteSyncer{WS: out, Size: 64 << 10, FlushInterval: logFlush}
	defer func() { _ = buffered.Stop() }()

	log := newLogger(cfg.Log, buffered)
	defer func() { _ = log.Sync() }()

	for _, name := range unknown {
		log.Warn("unknown environment variable", zap.String("name", name))
	}

	warnLooseFiles(log, cfg, src)

	if err := prepareFolders(cfg, log); err != nil {
		return err
	}

	// Short sessions allocate a lot that dies young (most of it the
	// engine's): a high GC target spends less of their CPU on collections,
	// and the server returns the free heap once connections stop arriving
	// (returnMemoryAfter), so an idle session costs what it holds. GOGC in
	// the environment still decides; GOMEMLIMIT caps the heap as usual.
	if !slices.ContainsFunc(src.Env, func(kv string) bool { return strings.HasPrefix(kv, "GOGC=") }) {
		debug.SetGCPercent(gcPercent)
	}

	accounts, err := auth.New(accountOptions(cfg))
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}

	opts := serverOptions(cfg)

	files, err := openStorage(ctx, cfg.Storage, src.Env, log)
	if err != nil {
		return err
	}

	opts.Storage = files.open

	if files.store != nil {
		defer files.store.Close() // after the sessions: the last uploads give their buffers back
	}

	srv, err := server.New(opts, accounts, log)
	if err != nil {
		return err
	}

	srv.Registry().MustRegister(buildInfo())

	if files.store != nil {
		srv.Registry().MustRegister(files.store.Collector())
	}

	if err := srv.Listen(); err != nil {
		return err
	}

	if files.store != nil {
		srv.Registry().MustRegister(files.store.Collectors()...)
		stopProbes := files.store.StartProbes()
		defer stopProbes()
	}

	reloads := newReloader(src, cfg, srv, log)

	adm, err := startAdmin(cfg.Admin, srv, files, reloads, log)
	if err != nil {
		shutdownNow(srv)

		return err
	}

	reloads.adm = adm // before the watcher and the admin listener serve

	log.Info("wharf started", zap.String("version", buildVersion()), zap.Bool("anonymous", cfg.Anonymous.Enabled),
		zap.Int("users", len(cfg.Users)))

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	admined := make(chan error, 1)
	if adm != nil {
		go func() { admined <- adm.Serve() }()
	} else {
		admined <- nil
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		reloads.watch(watchCtx, cfg.WatchInterval.Duration)
	}()

	stopWatching := func() {
		stopWatch()
		<-watched
	}

	// A store that did not answer at start is waited for, at most
	// storage.startup_timeout: wharf serves meanwhile, not ready.
	waitCtx, stopWaiting := context.WithCancel(ctx)
	notAnswered := make(chan error, 1)

	var waiting sync.WaitGroup
	waiting.Go(func() {
		if err := files.wait(waitCtx, cfg.Storage.StartupTimeout.Duration); err != nil {
			notAnswered <- err
		}
	})
	defer func() {
		stopWaiting()
		waiting.Wait()
	}()

	for running := true; running; {
		select {
		case err := <-served:
			// The listener failed on its own: stop the sessions too.
			stopWatching()
			shutdownNow(srv)
			stopAdmin(adm, admined, log)

			return err
		case err := <-notAnswered:
			log.Error("storage did not answer at start, stopping", zap.Error(err))
			stopWatching()
			shutdownNow(srv)
			stopAdmin(adm, admined, log)

			return err
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				_, _ = reloads.reload("SIGHUP") // a refusal is logged
			}

			if err := out.Reopen(); err != nil {
				log.Error("reopen log file", zap.Error(err))
			}

			_ = srv.ReopenLogs()
			log.Info("log files reopened", zap.Stringer("signal", sig))
		case <-ctx.Done():
			running = false
		}
	}

	stopWatching()
	log.Info("shutting down", zap.Duration("grace", cfg.ShutdownTimeout.Duration))

	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()

	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown cut transfers short", zap.Error(err))
	}

	stopAdmin(adm, admined, log)

	if err := <-served; err != nil {
		return err
	}

	log.Info("stopped")

	return nil
}

func shutdownNow(srv *server.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	_ = srv.Shutdown(ctx)
}

// warnLooseFiles logs a warning for each file holding a secret that others
// may read or change (see config.LooseFiles): wharf runs, but anyone on the
// machine could read the TLS key or the password hashes, or add an account.
func warnLooseFiles(log *zap.Logger, cfg config.Config, src config.Sources) {
	for _, f := range cfg.LooseFiles(src.Path()) {
		log.Warn("secret file open to others", zap.String("key", f.Key), zap.String("path", f.Path),
			zap.String("mode", fmt.Sprintf("%04o", f.Mode)), zap.String("fix", f.Fix()))
	}
}

// startAdmin starts the admin listener when [admin] listen is set; its
// POST /reload reloads through reloads.
func startAdmin(c config.Admin, srv *server.Server, files storage, reloads *reloader, log *zap.Logger) (*admin.Server, error) {
	if c.Listen == "" {
		return nil, nil //nolint:nilnil // no admin listener is not an error
	}

	adm := admin.New(admin.Options{
		Listen:   c.Listen,
		Pprof:    c.Pprof,
		Token:    c.Token,
		Hosts:    c.Hosts,
		Gatherer: srv.Registry(),
		Sessions: func() []admin.Session { return adminSessions(srv.Sessions()) },
		Reload:   func() ([]string, error) { return reloads.reload("POST /reload") },
		Healthy:  srv.Accepting,
		Ready: func() (bool, string) {
			if !srv.Accepting() {
				return false, "not accepting FTP connections"
			}

			return files.ready()
		},
		Snapshots: func() []admin.Snapshot { return adminSnapshots(srv.Snapshots()) },
		Degraded:  srv.SyncProblems,
	}, log)

	if err := adm.Listen(); err != nil {
		return nil, fmt.Errorf("admin.listen: %w", err)
	}

	return adm, nil
}

func stopAdmin(adm *admin.Server, served <-chan error, log *zap.Logger) {
	if adm == nil {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	if err := adm.Shutdown(ctx); err != nil {
		log.Warn("admin shutdown", zap.Error(err))
	}

	if err := <-served; err != nil {
		log.Warn("admin listener", zap.Error(err))
	}
}

func adminSessions(in []server.SessionSnapshot) []admin.Session {
	out := make([]admin.Session, 0, len(in))
	for _, s := range in {
		a := admin.Session{ID: s.ID, User: s.User, ClientIP: s.ClientIP, Since: s.Since, Command: s.Command, TLS: s.TLS, DataTLS: s.DataTLS}
		if t := s.Transfer; t != nil {
			a.Transfer = &admin.Transfer{Path: t.Path, Direction: t.Direction, Bytes: t.Bytes, Size: t.Size, Started: t.Started}
			if el := time.Since(t.Started).Seconds(); el > 0 {
				a.Transfer.Rate = float64(t.Bytes) / el
			}
		}

		out = append(out, a)
	}

	return out
}

func accountOptions(cfg config.Config) auth.Options {
	opts := auth.Options{
		Anonymous:          cfg.Anonymous.Enabled,
		AnonymousRoot:      cfg.Anonymous.Root,
		AnonymousUploadDir: cfg.Anonymous.UploadDir,
		AnonymousMaxUpload: cfg.Anonymous.MaxUploadSize.Bytes,
		// S3 objects have no mode bits: the key has no effect there.
		AnonymousWorldReadableOnly: cfg.Anonymous.WorldReadableOnly && !cfg.Storage.S3(),
		AnonymousDownloadLimit:     cfg.Bandwidth.SessionDownload.Bytes,
		AnonymousUploadLimit:       cfg.Bandwidth.SessionUpload.Bytes,
		ClearTextAccounts:          cfg.TLS.ClearTextAccounts,
	}

	for _, u := range cfg.Users {
		opts.Users = append(opts.Users, auth.User{
			Name:          u.Name,
			PasswordHash:  u.Password,
			Home:          u.Home,
			Access:        auth.Access(u.Access),
			DownloadLimit: u.DownloadLimit(cfg),
			UploadLimit:   u.UploadLimit(cfg),
			TLS:           auth.TLSRule(u.TLS),
			Overwrite:     u.Overwrite,
		})
	}

	return opts
}

func serverOptions(cfg config.Config) server.Options {
	lo, hi := cfg.PassiveRange()

	return server.Options{
		Listen:              cfg.Listen,
		PublicHost:          cfg.PublicIP,
		PassivePortStart:    lo,
		PassivePortEnd:      hi,
		ActiveMode:          cfg.ActiveMode,
		IdleTimeout:         cfg.IdleTimeout.Duration,
		MaxClients:          cfg.MaxClients,
		MaxClientsPerIP:     cfg.MaxClientsPerIP,
		Banner:              cfg.Greeting(),
		LoginMessage:        cfg.Anonymous.LoginMessageText,
		ASCIIConversion:     cfg.ASCIIConversion,
		AtomicUploads:       cfg.UploadMode == config.UploadAtomic,
		NoUploadSync:        cfg.UploadSync == config.UploadSyncNever,
		TLSMode:             server.TLSMode(cfg.TLS.Mode),
		TLSCertFile:         cfg.TLS.CertFile,
		TLSKeyFile:          cfg.TLS.KeyFile,
		TransferLog:         cfg.Log.TransferLog,
		DataTimeout:         cfg.DataTimeout.Duration,
		MaxListEntries:      cfg.MaxListEntries,
		LoginTimeout:        cfg.LoginTimeout.Duration,
		ReturnMemoryAfter:   returnMemoryAfter,
		MaxListingMemory:    cfg.MaxListingMemory.Bytes,
		UploadResumeWindow:  cfg.UploadResumeWindow.Duration,
		RequireSessionReuse: cfg.TLS.RequireSessionReuse,
		DropBox: server.DropBoxLimits{
			Quota:          cfg.Anonymous.UploadQuota.Bytes,
			MaxFiles:       cfg.Anonymous.UploadMaxFiles,
			MaxDepth:       cfg.Anonymous.UploadMaxDepth,
			FilesPerMinute: cfg.Anonymous.UploadRate,
			BytesPerHour:   cfg.Anonymous.UploadBytesPerHour.Bytes,
		},
		IPv6Prefix:  cfg.Ban.IPv6Prefix,
		AccessAllow: config.Prefixes(cfg.Access.Allow),
		AccessDeny:  config.Prefixes(cfg.Access.Deny),
		Bandwidth: server.Bandwidth{
			TotalDownload:   cfg.Bandwidth.TotalDownload.Bytes,
			TotalUpload:     cfg.Bandwidth.TotalUpload.Bytes,
			SessionDownload: cfg.Bandwidth.SessionDownload.Bytes,
			SessionUpload:   cfg.Bandwidth.SessionUpload.Bytes,
		},
		Ban: server.BanOptions{
			MaxFailures: cfg.Ban.MaxFailures,
			Window:      cfg.Ban.Window.Duration,
			Duration:    cfg.Ban.Duration.Duration,
			Allow:       config.Prefixes(cfg.Ban.Allow),
		},
		Listing: server.Listing{
			Symlinks:    server.SymlinkMode(cfg.Listing.Symlinks),
			Hide:        cfg.Listing.Hide,
			Deny:        cfg.Listing.Deny,
			MessageFile: cfg.Listing.MessageFile,
			Recursive:   cfg.Listing.Recursive,
			CacheTTL:    listingCacheTTL(cfg.Listing.CacheTTL.Duration),
		},
		ProxyTrusted: config.Prefixes(cfg.ProxyProtocol.Trusted),
		Snapshots:    cfg.SnapshotOptions(),
		HTTP:         server.HTTPOptions{Listen: cfg.HTTP.Listen, TLS: cfg.HTTP.TLS},
		Hash:         cfg.Hash.HashOptions(),
		Manifest:     cfg.Manifest.ManifestOptions(),
	}
}

// listingCacheTTL is listing.cache_ttl as the server takes it, where "0s"
// (keep no listing) is a negative value and 0 its default.
func listingCacheTTL(ttl time.Duration) time.Duration {
	if ttl == 0 {
		return -1
	}

	return ttl
}

// newLogger builds the one logger of the process from [log]: level, and
// format console or json, written to out.
func newLogger(c config.Log, out zapcore.WriteSyncer) *zap.Logger {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "time"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder

	var enc zapcore.Encoder
	if c.Format == config.LogJSON {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}

	// Client-supplied text (user names, paths, verbs) is escaped in every
	// line, so it cannot forge or hide log lines (logsafe).
	return zap.New(logsafe.Core(zapcore.NewCore(enc, zapcore.AddSync(out), zapcore.Level(c.Level))))
}

// checkConfig validates the configuration in effect (the file, the
// environment, the flags) and prints every problem, the folders that the
// user it runs as can't use included (config.UnusableFolders: run it as the
// user wharf runs as), or with -print the configuration itself, secrets
// redacted. It warns, on stderr, about the unknown WHARF_* variables and the
// secret files that others may read or change (config.LooseFiles), without
// failing.
func checkConfig(args, env []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wharf check-config", flag.ContinueOnError)
	configPath := fs.String("config", "", "path of the TOML configuration `file`, as FILE (default: $WHARF_CONFIG, else none)")
	overrides := addOverrideFlags(fs)
	printConfig := fs.Bool("print", false, "print the configuration in effect as TOML, secrets redacted")
	fs.Usage = usageFunc(fs, `Usage: wharf check-config [FILE] [-print] [-listen ADDR] [-public-host HOST] [-log-level LEVEL]

Validate the configuration in effect (FILE or -config, else $WHARF_CONFIG,
else none; then the WHARF_* variables and the flags) and print every
problem, each naming its key. Warn, on stderr, about secret files that
others can read. Exit 0 when it is valid, 1 when it is not.
`)

	path, ok, err := commandConfig(fs, configPath, args, stdout)
	if !ok {
		return err
	}

	src := config.Sources{File: path, Env: env, Flags: overrides()}

	cfg, unknown, err := loadConfig(src)
	for _, name := range unknown {
		fmt.Fprintf(stderr, "wharf: warning: unknown environment variable %s (ignored)\n", name)
	}

	if err != nil {
		problems := strings.Split(err.Error(), "\n")
		for _, p := range problems {
			fmt.Fprintln(stdout, p)
		}

		return fmt.Errorf("configuration has %d problem(s)", len(problems))
	}

	for _, f := range cfg.LooseFiles(src.Path()) {
		fmt.Fprintf(stderr, "wharf: warning: %s\n", f)
	}

	// Folders the user wharf runs as can't use: the configuration is right,
	// but the server could not serve them.
	if bad := cfg.UnusableFolders(); len(bad) > 0 {
		for _, u := range bad {
			fmt.Fprintln(stdout, filePrefix(src)+u.String())
		}

		return fmt.Errorf("configuration has %d problem(s)", len(bad))
	}

	if *printConfig {
		return cfg.WriteTOML(stdout)
	}

	fmt.Fprintf(stdout, "%s: OK\n", configName(src))

	return nil
}

// filePrefix starts a problem's line with the file it is about, as
// configuration problems do ("" without a file).
func filePrefix(src config.Sources) string {
	if path := src.Path(); path != "" {
		return path + ": "
	}

	return ""
}

// configName names the configuration that src gives, for messages.
func configName(src config.Sources) string {
	if path := src.Path(); path != "" {
		return path
	}

	return "configuration without a file"
}

// hashPassword reads one password from stdin (without echo on a terminal)
// and prints its bcrypt hash for a [[users]] password key.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wharf hash-password", flag.ContinueOnError)
	fs.Usage = usageFunc(fs, `Usage: wharf hash-password < password-file

Read one password on stdin (no echo on a terminal) and print its bcrypt
hash, for the password key of a [[users]] table.
`)

	args, err := parseArgs(fs, args, stdout)
	if err != nil {
		return helped(err)
	}

	if len(args) > 0 {
		return &usageError{cmd: fs.Name(), msg: fmt.Sprintf("unexpected argument %q: the password is read on stdin", args[0])}
	}

	password, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}

	if password == "" {
		return errors.New("empty password")
	}

	hash, err := auth.Hash(password)
	if err != nil {
		return err
	}

	fmt.Fprintln(stdout, hash)

	return nil
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}

		return string(p), nil
	}

	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}

	return strings.TrimRight(line, "\r\n"), nil
}

// buildInfo is wharf_build_info: always 1, labelled with the version and
// the Go release that built it, so dashboards can tell which binary runs.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "wharf_build_info",
		Help:        "Always 1, labelled with the version of wharf and the Go release that built it.",
		ConstLabels: prometheus.Labels{"version": buildVersion(), "goversion": runtime.Version()},
	})
	g.Set(1)

	return g
}

func buildVersion() string {
	if version != "" {
		return version
	}

	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}

	return "dev"
}
