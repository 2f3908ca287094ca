package server

import (
	"wharf/auth"
	"wharf/vfs"
)

// readView is what an account reads of its root, the same for an FTP
// session, an HTTP request and a manifest's walk: on disk, only what others
// may read when the account is world_readable_only (anonymous; an object
// store has no mode bits), and, with pins, each [[snapshots]] link's copy
// kept by its holder (snapshots.go). disk is that view when the root is on
// disk, else nil.
func readView(root Root, acct auth.Account, pins *vfs.Pins) (view Root, disk *vfs.Fs) {
	disk, onDisk := root.(*vfs.Fs)
	if !onDisk {
		return root, nil
	}

	if acct.WorldReadableOnly {
		disk = disk.WorldReadable()
	}

	if pins != nil {
		disk = disk.WithPins(pins)
	}

	return disk, disk
}
