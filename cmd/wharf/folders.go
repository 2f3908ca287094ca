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

// prepareFolders makes, when create_missing is set, the folders wharf serves
// that do not exist (see config.Folders), logging each one made. It fails
// when the anonymous root could not be made; a home that could not is logged,
// and wharf starts without it (its logins are refused with 421).
func prepareFolders(cfg config.Config, log *zap.Logger) error {
	if !cfg.CreateMissing {
		return nil
	}

	for _, f := range cfg.Folders() {
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
			continue
		}

		err = fmt.Errorf("%s %q: create_missing: %w (wharf runs as uid %d)", f.Key, f.Path, err, os.Geteuid())
		if f.Required {
			return err
		}

		log.Error("cannot create folder", zap.String("key", f.Key), zap.String("path", f.Path), zap.Error(err))
	}

	return nil
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
