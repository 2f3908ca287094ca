package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"wharf/config"
	"wharf/server"
	"wharf/vfs/s3"
)

// An S3 folder lists the same from every home that reaches it: the server
// shares its listings among them.
var _ server.ListingKeyer = (*s3.Fs)(nil)

// HASH reads the SHA-256 an object keeps (x-amz-checksum-sha256) through this.
var _ server.StoredChecksums = (*s3.Fs)(nil)

// storageCheck bounds the question openStorage asks the store.
const storageCheck = 10 * time.Second

// storage is [storage] as serve runs it: how sessions open their files, and
// for an S3-compatible bucket, the store whose health /readyz reports.
type storage struct {
	open  server.Storage // nil: the local disk (the server's default)
	store *s3.Store      // nil: the local disk
}

// openStorage returns how sessions open their files: the local disk, or each
// home as a key prefix of the S3-compatible bucket of [storage]. It asks the
// store once whether the bucket exists: a store that answers but refuses (a
// missing bucket, wrong credentials) is an error, and so is one that does not
// answer when storage.startup_timeout is 0; otherwise serve starts, not ready,
// and waits for it (see storage.wait).
//
// The credentials are storage.access_key and storage.secret_key, else
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from env. Without them (or
// with AWS_SESSION_TOKEN, which needs the store's own credential chain) the
// store looks further itself: the process environment, the shared
// credentials file, an IAM role.
func openStorage(ctx context.Context, c config.Storage, env []string, log *zap.Logger) (storage, error) {
	if !c.S3() {
		return storage{}, nil
	}

	opts := s3.Options{
		Endpoint:  c.Endpoint,
		Region:    c.Region,
		Bucket:    c.Bucket,
		Prefix:    c.Prefix,
		AccessKey: c.AccessKey,
		SecretKey: c.SecretKey,
		PathStyle: c.PathStyle,
		Log:       log.Named("s3"),

		UploadMemory:       c.UploadMemory.Bytes,
		AbandonedUploadAge: c.AbandonedUploadAge.Duration,
	}

	if opts.AccessKey == "" {
		vars := environ(env)
		id, secret := vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"]
		if id != "" && secret != "" && vars["AWS_SESSION_TOKEN"] == "" {
			opts.AccessKey, opts.SecretKey = id, secret
		}
	}

	store, err := s3.Prepare(opts)
	if err != nil {
		return storage{}, fmt.Errorf("storage: %w", err)
	}

	check, cancel := context.WithTimeout(ctx, storageCheck)
	defer cancel()

	if err := store.Check(check); err != nil {
		if !errors.Is(err, s3.ErrUnavailable) || c.StartupTimeout.Duration == 0 {
			return storage{}, fmt.Errorf("storage: %w", err)
		}

		log.Warn("storage unavailable at start, waiting for it", zap.Stringer("store", store),
			zap.Duration("startup_timeout", c.StartupTimeout.Duration), zap.Error(err))
	}

	open := func(home string, atomic bool) (server.Root, error) {
		fs, err := store.Open(home, atomic)
		if err != nil {
			return nil, err
		}

		return fs, nil
	}

	return storage{open: open, store: store}, nil
}

// ready reports whether the files can be served: always from the disk; from
// a store while it answers, else with the reason, for /readyz.
func (s storage) ready() (bool, string) {
	if s.store == nil {
		return true, ""
	}

	return s.store.Health()
}

// wait returns once the store has answered, nil, or after timeout an error
// naming the store: wharf then exits, rather than run on while its files are
// out of reach. It returns nil when ctx ends first (wharf is stopping anyway).
func (s storage) wait(ctx context.Context, timeout time.Duration) error {
	if s.store == nil {
		return nil
	}

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	if err := s.store.WaitUp(waitCtx); err == nil || ctx.Err() != nil {
		return nil
	}

	_, why := s.store.Health()

	return fmt.Errorf("storage: %s did not answer within storage.startup_timeout (%s): %s", s.store, timeout, why)
}

// environ turns "NAME=value" entries into a map; a later entry wins.
func environ(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if name, value, ok := strings.Cut(kv, "="); ok {
			m[name] = value
		}
	}

	return m
}
