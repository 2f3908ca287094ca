package config

import (
	"fmt"
	"io/fs"
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
