package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"go.uber.org/zap"

	"wharf/config"
)

// prepareFolders readies the folders wharf serves (see config.Folders), at
// start and on every reload: with create_missing it makes those that do not
// exist, logging each one made; then it checks that the user wharf runs as
// can use each one (config.UnusableFolders). It fails when the anonymous root
// can't be made or read: anonymous sessions would have nothing to serve. A
// home or upload_dir wharf can't use is logged as an error and wharf goes on
// (a login to such a home gets 421), so one broken home does not stop the
// other accounts.
func prepareFolders(cfg config.Config, log *zap.Logger) error {
	if cfg.CreateMissing {
		for _, f := range cfg.Folders() {
			if err := createFolder(f, log); err != nil && f.Required {
				return err
			}
		}
	}

	for _, u := range cfg.UnusableFolders() {
		if u.Required {
			return errors.New(u.String())
		}

		log.Error("folder unusable", zap.String("key", u.Key), zap.String("path", u.Path), zap.Int("uid", u.UID),
			zap.String("problem", u.Problem), zap.Error(u.Err))
	}

	return nil
}

// createFolder makes f if it is missing, logging each folder made, and
// returns, logged, the error that stopped it.
func createFolder(f config.Folder, log *zap.Logger) error {
	made, err := makeFolder(f.Path, f.Mode)
	for _, dir := range made {
		mode := config.ParentMode
		if dir == filepath.Clean(f.Path) {
			mode = f.Mode
		}

		log.Info("folder created", zap.String("key", f.Key), zap.String("path", dir),
			zap.String("mode", fmt.Sprintf("%04o", mode)), zap.Int("uid", os.Geteuid()))
	}

	if err == nil {
		return nil
	}

	err = fmt.Errorf("%s %q: create_missing: %w (wharf runs as uid %d)", f.Key, f.Path, err, os.Geteuid())
	log.Error("cannot create folder", zap.String("key", f.Key), zap.String("path", f.Path), zap.Error(err))

	return err
}

// makeFolder makes the folder path with mode, and the folders above it that
// are missing with config.ParentMode, and returns those it made, from the top.
// A folder that another process made meanwhile is fine.
func makeFolder(path string, mode fs.FileMode) ([]string, error) {
	path = filepath.Clean(path)

	var missing []string
	for dir := path; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}

		missing = append(missing, dir)
		if filepath.Dir(dir) == dir {
			break
		}
	}

	var made []string
	for i, dir := range slices.Backward(missing) {
		perm := config.ParentMode
		if i == 0 {
			perm = mode
		}

		if err := os.Mkdir(dir, perm); err != nil {
			if info, serr := os.Stat(dir); serr == nil && info.IsDir() {
				continue
			}

			return made, err
		}

		made = append(made, dir)
	}

	return made, nil
}
