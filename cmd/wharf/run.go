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
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"wharf/admin"
	"wharf/auth"
	"wharf/config"
	"wharf/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usageText = `wharf: an FTP server for public mirrors and upload accounts.

Usage:
  wharf [-config FILE]               serve; without -config, serve ./public
                                     anonymously, read-only, on 0.0.0.0:2121
  wharf check-config [-config FILE]  validate a configuration, print every problem
  wharf hash-password                read a password on stdin, print its bcrypt hash
  wharf -version                     print the version

Flags (-flag and --flag both work):
`

// errUsage means the command line was wrong; the flag package already said why.
var errUsage = errors.New("invalid command line (see wharf -help)")

// run is the whole program; main only reports its error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "hash-password":
			return hashPassword(args[1:], stdin, stdout, stderr)
		case "check-config":
			return checkConfig(args[1:], stdout, stderr)
		}
	}

	fs := flag.NewFlagSet("wharf", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the TOML configuration `file`")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}

		return errUsage
	}

	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wharf: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()

		return errUsage
	}

	if *showVersion {
		fmt.Fprintln(stdout, "wharf", buildVersion())

		return nil
	}

	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}

	return serve(ctx, cfg, *configPath, stdout)
}

func loadConfig(path string) (config.Config, error) {
	if path != "" {
		return config.Load(path)
	}

	cfg := config.Default()
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("default configuration (no -config given): %w", err)
	}

	return cfg, nil
}

// serve runs the server until ctx ends or SIGINT/SIGTERM arrives, then shuts
// down gracefully. SIGHUP reloads path (when given) and reopens the log
// files; SIGUSR1 only reopens them (logrotate).
func serve(ctx context.Context, cfg config.Config, path string, stdout io.Writer) error {
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

	log, err := newLogger(cfg.Log, out)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	accounts, err := auth.New(accountOptions(cfg))
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}

	opts, err := serverOptions(cfg)
	if err != nil {
		return err
	}

	srv, err := server.New(opts, accounts, log)
	if err != nil {
		return err
	}

	if err := srv.Listen(); err != nil {
		return err
	}

	adm, err := startAdmin(cfg.Admin, srv, log)
	if err != nil {
		shutdownNow(srv)

		return err
	}

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

	for running := true; running; {
		select {
		case err := <-served:
			// The listener failed on its own: stop the sessions too.
			shutdownNow(srv)
			stopAdmin(adm, admined, log)

			return err
		case sig := <-signals:
			if sig == syscall.SIGHUP && path != "" {
				reload(path, cfg, srv, log)
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

// reload reads the configuration file again and applies what can change
// while sessions run: accounts, bandwidth, bans and the TLS certificate. A
// file that does not validate changes nothing.
func reload(path string, running config.Config, srv *server.Server, log *zap.Logger) {
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("reload refused, keeping the running configuration", zap.String("file", path), zap.Error(err))

		return
	}

	accounts, err := auth.New(accountOptions(cfg))
	if err != nil {
		log.Error("reload refused, keeping the running configuration", zap.String("file", path), zap.Error(err))

		return
	}

	opts, err := serverOptions(cfg)
	if err != nil {
		log.Error("reload refused, keeping the running configuration", zap.String("file", path), zap.Error(err))

		return
	}

	if err := srv.Reload(server.Reload{
		Accounts:    accounts,
		Bandwidth:   opts.Bandwidth,
		Ban:         opts.Ban,
		TLSCertFile: opts.TLSCertFile,
		TLSKeyFile:  opts.TLSKeyFile,
	}); err != nil {
		log.Error("reload refused, keeping the running configuration", zap.String("file", path), zap.Error(err))

		return
	}

	for _, key := range needRestart(running, cfg) {
		log.Warn("changed key takes effect only after a restart", zap.String("key", key))
	}
}

// needRestart lists keys whose change a reload cannot apply.
func needRestart(old, cur config.Config) []string {
	var keys []string
	check := func(key string, changed bool) {
		if changed {
			keys = append(keys, key)
		}
	}

	check("listen", old.Listen != cur.Listen)
	check("public_host", old.PublicIP != cur.PublicIP)
	check("passive_ports", !slices.Equal(old.PassivePorts, cur.PassivePorts))
	check("active_mode", old.ActiveMode != cur.ActiveMode)
	check("idle_timeout", old.IdleTimeout != cur.IdleTimeout)
	check("max_clients", old.MaxClients != cur.MaxClients)
	check("max_clients_per_ip", old.MaxClientsPerIP != cur.MaxClientsPerIP)
	check("banner", old.Banner != cur.Banner)
	check("upload_mode", old.UploadMode != cur.UploadMode)
	check("data_timeout", old.DataTimeout != cur.DataTimeout)
	check("max_list_entries", old.MaxListEntries != cur.MaxListEntries)
	check("login_timeout", old.LoginTimeout != cur.LoginTimeout)
	check("log", old.Log != cur.Log)
	check("tls.mode", old.TLS.Mode != cur.TLS.Mode)
	check("admin", old.Admin != cur.Admin)

	return keys
}

// startAdmin starts the admin listener when [admin] listen is set.
func startAdmin(c config.Admin, srv *server.Server, log *zap.Logger) (*admin.Server, error) {
	if c.Listen == "" {
		return nil, nil //nolint:nilnil // no admin listener is not an error
	}

	adm := admin.New(admin.Options{
		Listen:   c.Listen,
		Pprof:    c.Pprof,
		Gatherer: srv.Registry(),
		Sessions: func() []admin.Session { return adminSessions(srv.Sessions()) },
		Healthy:  srv.Accepting,
		Ready: func() (bool, string) {
			if !srv.Accepting() {
				return false, "not accepting FTP connections"
			}

			return true, ""
		},
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
		a := admin.Session{ID: s.ID, User: s.User, ClientIP: s.ClientIP, Since: s.Since, Command: s.Command}
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
		Anonymous:              cfg.Anonymous.Enabled,
		AnonymousRoot:          cfg.Anonymous.Root,
		AnonymousUploadDir:     cfg.Anonymous.UploadDir,
		AnonymousMaxUpload:     cfg.Anonymous.MaxUploadSize.Bytes,
		AnonymousDownloadLimit: cfg.Bandwidth.SessionDownload.Bytes,
		AnonymousUploadLimit:   cfg.Bandwidth.SessionUpload.Bytes,
	}

	for _, u := range cfg.Users {
		opts.Users = append(opts.Users, auth.User{
			Name:          u.Name,
			PasswordHash:  u.Password,
			Home:          u.Home,
			Access:        u.AccessLevel(),
			DownloadLimit: u.DownloadLimit(cfg),
			UploadLimit:   u.UploadLimit(cfg),
		})
	}

	return opts
}

func serverOptions(cfg config.Config) (server.Options, error) {
	mode, err := server.ParseTLSMode(cfg.TLS.Mode)
	if err != nil {
		return server.Options{}, fmt.Errorf("tls.mode: %w", err)
	}

	lo, hi := cfg.PassiveRange()

	return server.Options{
		Listen:           cfg.Listen,
		PublicHost:       cfg.PublicIP,
		PassivePortStart: lo,
		PassivePortEnd:   hi,
		ActiveMode:       cfg.ActiveMode,
		IdleTimeout:      cfg.IdleTimeout.Duration,
		MaxClients:       cfg.MaxClients,
		MaxClientsPerIP:  cfg.MaxClientsPerIP,
		Banner:           cfg.Banner,
		ASCIIConversion:  cfg.ASCIIConversion,
		AtomicUploads:    cfg.UploadMode != "direct",
		TLSMode:          mode,
		TLSCertFile:      cfg.TLS.CertFile,
		TLSKeyFile:       cfg.TLS.KeyFile,
		TransferLog:      cfg.Log.TransferLog,
		DataTimeout:      cfg.DataTimeout.Duration,
		MaxListEntries:   cfg.MaxListEntries,
		LoginTimeout:     cfg.LoginTimeout.Duration,
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
		},
	}, nil
}

// newLogger builds the one logger of the process from [log]: level, and
// format console or json, written to out.
func newLogger(c config.Log, out zapcore.WriteSyncer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}

	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "time"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.StringDurationEncoder

	var enc zapcore.Encoder
	switch c.Format {
	case "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}

	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(out), level)), nil
}

func checkConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wharf check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the TOML configuration `file` (default: the built-in configuration)")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}

		return errUsage
	}

	_, err := loadConfig(*configPath)
	if err != nil {
		problems := strings.Split(err.Error(), "\n")
		for _, p := range problems {
			fmt.Fprintln(stdout, p)
		}

		return fmt.Errorf("configuration has %d problem(s)", len(problems))
	}

	name := *configPath
	if name == "" {
		name = "default configuration"
	}

	fmt.Fprintf(stdout, "%s: OK\n", name)

	return nil
}

// hashPassword reads one password from stdin (without echo on a terminal)
// and prints its bcrypt hash for a [[users]] password key.
func hashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("wharf hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: wharf hash-password < password-file\nReads one password on stdin (no echo on a terminal) and prints its bcrypt hash.")
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}

		return errUsage
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

func buildVersion() string {
	if version != "" {
		return version
	}

	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}

	return "dev"
}
