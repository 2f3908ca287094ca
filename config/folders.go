package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"wharf/auth"
)

// Modes that create_missing gives the folders it makes, less what the umask
// takes away. Every folder is owned by the user wharf runs as.
const (
	// PublicMode is the anonymous root's: what is published there is for
	// everyone, people on the machine included.
	PublicMode fs.FileMode = 0o755
	// PrivateMode is a home's and upload_dir's: only wharf's user reads
	// what accounts and strangers upload, as the drop box's own files (0600)
	// and folders (0700) are.
	PrivateMode fs.FileMode = 0o700
	// ParentMode is that of the folders made above one of them
	// (/srv/ftp/home for /srv/ftp/home/alice): they only lead the way.
	ParentMode fs.FileMode = 0o755
)

// Folder is a folder on disk that wharf serves, as Folders lists it.
type Folder struct {
	// Key names it in messages: "anonymous.root", "anonymous.upload_dir",
	// `users[0] "alice": home`, with the users_file for an account from it.
	Key string
	// Path is as the configuration gives it; upload_dir joined to the root.
	Path string
	// Write is whether sessions write in it: the drop box, or the home of
	// a read-write or write-only account.
	Write bool
	// Mode is what create_missing makes it with.
	Mode fs.FileMode
	// Required is whether wharf can't start without it: the anonymous root.
	Required bool
}

// Folders lists the folders on disk that wharf serves, the anonymous root
// (when anonymous logins are enabled) and its upload_dir first, then each
// account's home once (the first account's key names it). With s3 it lists
// none: roots and homes are key prefixes there.
func (c Config) Folders() []Folder {
	if c.Storage.S3() {
		return nil
	}

	var folders []Folder

	if a := c.Anonymous; a.Enabled && a.Root != "" {
		folders = append(folders, Folder{Key: "anonymous.root", Path: a.Root, Mode: PublicMode, Required: true})
		if a.UploadDir != "" {
			folders = append(folders, Folder{Key: "anonymous.upload_dir", Path: filepath.Join(a.Root, a.UploadDir),
				Write: true, Mode: PrivateMode})
		}
	}

	seen := map[string]int{} // path -> index in folders
	for _, f := range folders {
		seen[filepath.Clean(f.Path)] = len(seen)
	}

	count := map[string]int{} // entries so far in each file
	for _, u := range c.Users {
		at := count[u.file]
		count[u.file]++

		if u.Home == "" {
			continue
		}

		write := u.AccessLevel() != auth.ReadOnly
		if i, ok := seen[filepath.Clean(u.Home)]; ok {
			folders[i].Write = folders[i].Write || write

			continue
		}

		key := itemLabel("users", at, u.Name) + ": home"
		if u.file != "" {
			key = fmt.Sprintf("%s (%s)", key, u.file)
		}

		seen[filepath.Clean(u.Home)] = len(folders)
		folders = append(folders, Folder{Key: key, Path: u.Home, Write: write, Mode: PrivateMode})
	}

	return folders
}

// UnusableFolder is a folder wharf serves that the user it runs as can't
// use as it must: it can't read it, can't write in a folder that sessions
// write in, can't make it (create_missing), or it is not there at all.
type UnusableFolder struct {
	Folder
	UID     int    // the user wharf runs as
	Problem string // "can't read it", "can't write in it", "can't create it", "does not exist"
	Err     error  // what failed; nil for "does not exist"
}

// String says which folder, what wharf can't do, as which uid, and why:
// `anonymous.root "/srv/ftp/pub": can't read it as uid 10001: open /srv/ftp/pub: permission denied`.
func (u UnusableFolder) String() string {
	s := fmt.Sprintf("%s %q: %s as uid %d", u.Key, u.Path, u.Problem, u.UID)
	if u.Err != nil {
		s += ": " + u.Err.Error()
	}

	return s
}

// UnusableFolders checks each folder of Folders as the user wharf runs as,
// with the operations sessions make: it opens the folder and reads an entry
// (os.Root, as sessions do, so a folder others can't search fails too), and
// asks the system whether it may write in the folders that sessions write in
// (access(2): a read-only file system fails too, and nothing is written).
// A missing folder that create_missing will make is checked as one that
// wharf must be able to create in its nearest existing parent. It returns
// the folders wharf can't use, for check-config, doctor and start-up. On
// systems other than Unix it checks only that folders can be read.
func (c Config) UnusableFolders() []UnusableFolder {
	uid := os.Geteuid()

	var bad []UnusableFolder
	for _, f := range c.Folders() {
		if problem, err := checkFolder(f, c.CreateMissing); problem != "" {
			bad = append(bad, UnusableFolder{Folder: f, UID: uid, Problem: problem, Err: err})
		}
	}

	return bad
}

// checkFolder returns what the user wharf runs as can't do with f, and why;
// "" when it can use f. create is create_missing.
func checkFolder(f Folder, create bool) (string, error) {
	if _, err := os.Stat(f.Path); errors.Is(err, fs.ErrNotExist) {
		if !create {
			return "does not exist", nil
		}

		parent := filepath.Dir(filepath.Clean(f.Path))
		for !exists(parent) && filepath.Dir(parent) != parent {
			parent = filepath.Dir(parent)
		}

		if err := canWrite(parent); err != nil {
			return "can't create it", fmt.Errorf("can't write in %s: %w", parent, err)
		}

		return "", nil
	}

	root, err := os.OpenRoot(f.Path)
	if err != nil {
		return "can't read it", err
	}
	defer root.Close()

	dir, err := root.Open(".")
	if err != nil {
		return "can't read it", fmt.Errorf("open %s: %w", f.Path, statError(err))
	}
	defer dir.Close()

	if _, err := dir.ReadDir(1); err != nil && !errors.Is(err, io.EOF) {
		return "can't read it", fmt.Errorf("read %s: %w", f.Path, statError(err))
	}

	if f.Write {
		if err := canWrite(f.Path); err != nil {
			return "can't write in it", err
		}
	}

	return "", nil
}
