package config

import "wharf/server"

// Hash is the [hash] table: where HASH, XSHA256, XSHA512, XSHA1 and XMD5
// find a file's digest. wharf answers them from the checksum files the
// mirror publishes beside its files, never by reading a file on demand
// unless compute_max_size allows it for small ones.
type Hash struct {
	// Files are the checksum files looked for in a file's folder, in order:
	// exact names, or path.Match patterns of one name ("*.sha256" is
	// "a.iso.sha256" beside "a.iso"; "*CHECKSUM" is found in the folder's
	// listing). A file is named by a checksum file not older than it.
	Files []string `toml:"files"` // server.DefaultHashFiles()
	// SearchUp is how many folders above a file's own are looked in too, for
	// checksum files naming it by its path from there ("sub/dir/a.iso").
	SearchUp int `toml:"search_up"` // 0, from 0 to 16
	// ComputeMaxSize lets a file up to this size be hashed on demand when no
	// checksum file names it: one file at a time per session, one per core
	// in all. 0 never hashes.
	ComputeMaxSize Size `toml:"compute_max_size"` // 0
}

// DefaultHash is [hash]'s default.
func DefaultHash() Hash {
	return Hash{Files: server.DefaultHashFiles()}
}

// maxSearchUp bounds hash.search_up: each level is a folder looked in per HASH.
const maxSearchUp = 16

func (h Hash) check(p *problems) {
	checkPatterns(p, "hash.files", h.Files)

	if h.SearchUp < 0 || h.SearchUp > maxSearchUp {
		p.addf("hash.search_up", "must be from 0 (the file's own folder only) to %d, got %d", maxSearchUp, h.SearchUp)
	}

	checkSize(p, "hash.compute_max_size", h.ComputeMaxSize)
}

// HashOptions is [hash] as the server takes it.
func (h Hash) HashOptions() server.Hash {
	return server.Hash{Files: h.Files, SearchUp: h.SearchUp, ComputeMaxSize: h.ComputeMaxSize.Bytes}
}
