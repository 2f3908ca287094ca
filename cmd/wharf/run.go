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
	"strings"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

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

	return serve(ctx, cfg, stdout)
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

// serve runs the server until ctx ends or SIGINT/SIGTERM arrives, then shuts down gracefully.
func serve(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	log, err := newLogger(cfg.Log, stdout)
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

	log.Info("wharf started", zap.String("version", buildVersion()), zap.Bool("anonymous", cfg.Anonymous.Enabled),
		zap.Int("users", len(cfg.Users)))

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()

	select {
	case err := <-served:
		// The listener failed on its own: stop the sessions too.
		shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)

		return err
	case <-ctx.Done():
	}

	log.Info("shutting down", zap.Duration("grace", cfg.ShutdownTimeout.Duration))

	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout.Duration)
	defer cancel()

	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("shutdown cut transfers short", zap.Error(err))
	}

	if err := <-served; err != nil {
		return err
	}

	log.Info("stopped")

	return nil
}

func accountOptions(cfg config.Config) auth.Options {
	opts := auth.Options{
		Anonymous:     cfg.Anonymous.Enabled,
		AnonymousRoot: cfg.Anonymous.Root,
	}

	for _, u := range cfg.Users {
		opts.Users = append(opts.Users, auth.User{
			Name:         u.Name,
			PasswordHash: u.Password,
			Home:         u.Home,
			Access:       u.AccessLevel(),
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
	}, nil
}

// newLogger builds the one logger of the process from [log]: level, and
// format console or json, written to out.
func newLogger(c config.Log, out io.Writer) (*zap.Logger, error) {
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

	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), level)), nil
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
