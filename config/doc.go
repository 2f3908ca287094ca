// Package config reads wharf's TOML configuration file and checks it before
// anything listens.
//
// Start from [Default] (how wharf runs without -config: ./public served
// anonymously and read-only on 0.0.0.0:2121) and decode a file over it with
// [Load] or [Parse], so that missing keys keep their defaults. Decoding is
// strict: a key the schema doesn't know, a value of the wrong type (such as a
// bare number where a duration string is expected, or a size with an unknown
// unit, see [ParseSize]) and every rule broken by
// [Config.Validate] are all collected and returned together with
// [errors.Join], one line per problem, each naming the file and the key:
//
//	wharf.toml: unknown key "pasive_ports"
//	wharf.toml: users[1] "alice": password: not a bcrypt hash (...)
//
// Relative paths (anonymous.root, users' homes, the TLS files, the transfer
// log, the log file) are relative to the process's working directory, as in
// vsftpd; they are kept as written. anonymous.upload_dir is relative to
// anonymous.root.
//
// Only cmd/wharf imports this package; it hands the other packages plain
// options built from the checked Config.
package config
