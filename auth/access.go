package auth

import "fmt"

// Access is what an account may do inside its home.
type Access int

// The access levels an account can have.
const (
	// ReadOnly allows listing and downloading; nothing may change.
	ReadOnly Access = iota
	// ReadWrite allows everything: uploads, renames, deletes, folders.
	ReadWrite
	// WriteOnly allows uploads and creating folders, but no downloads and no listings.
	WriteOnly
)

// String returns the name used in the configuration file.
func (a Access) String() string {
	switch a {
	case ReadOnly:
		return "read-only"
	case ReadWrite:
		return "read-write"
	case WriteOnly:
		return "write-only"
	default:
		return fmt.Sprintf("Access(%d)", int(a))
	}
}
