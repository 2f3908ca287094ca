package main

import (
	"context"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"wharf/config"
	"wharf/server"
	"wharf/vfs/s3"
)

// openStorage returns how sessions open their files: nil for the local disk
// (the server's default), or a function opening each home as a key prefix
// of the S3-compatible bucket of [storage], once the bucket answered.
//
// The credentials are storage.access_key and storage.secret_key, else
// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from env. Without them (or
// with AWS_SESSION_TOKEN, which needs the store's own credential chain) the
// store looks further itself: the process environment, the shared
// credentials file, an IAM role.
func openStorage(ctx context.Context, c config.Storage, env []string, log *zap.Logger) (server.Storage, error) {
	if !c.S3() {
		return nil, nil //nolint:nilnil // nil is the server's local disk
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
	}

	if opts.AccessKey == "" {
		vars := environ(env)
		id, secret := vars["AWS_ACCESS_KEY_ID"], vars["AWS_SECRET_ACCESS_KEY"]
		if id != "" && secret != "" && vars["AWS_SESSION_TOKEN"] == "" {
			opts.AccessKey, opts.SecretKey = id, secret
		}
	}

	store, err := s3.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}

	return func(home string, atomic bool) (server.Root, error) {
		fs, err := store.Open(home, atomic)
		if err != nil {
			return nil, err
		}

		return fs, nil
	}, nil
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
