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
// [Sources] layers the environment and command-line flags over the file:
// every scalar key can be set by WHARF_ and its path in capitals
// (WHARF_LISTEN, WHARF_LOG_LEVEL, WHARF_PASSIVE_PORTS="50000-50100",
// WHARF_LISTING_HIDE="*.tmp,README*"), WHARF_CONFIG names the file when
// -config is absent, and the flags -listen, -public-host and -log-level win
// over everything. storage.access_key and
// storage.secret_key can be read from the files named by
// WHARF_STORAGE_ACCESS_KEY_FILE and WHARF_STORAGE_SECRET_KEY_FILE, and
// users_file names a file of more [[users]]. Problems name the variable or
// flag that set the value, and unknown WHARF_* variables are returned for a
// warning. The package reads no environment itself: the caller passes it.
//
// Relative paths (anonymous.root, users' homes, the TLS files, the transfer
// log, the log file, users_file, banner_file, anonymous.login_message_file,
// admin.token_file) are relative to the process's working directory, as in vsftpd; they are
// kept as written. anonymous.upload_dir is relative to anonymous.root. With
// [storage] backend = "s3", anonymous.root and the homes are key prefixes in
// the bucket instead, and need not exist. Validate reads the texts of
// banner_file and anonymous.login_message_file into [Config.BannerText] and
// [Anonymous.LoginMessageText], and the token of admin.token_file into
// [Admin.Token], so loading the configuration again (SIGHUP) reads them
// again. Lists of networks ([ban] allow, [access] allow and deny) are
// decoded once into [Network] values, each bad item named by its index, and
// the keys that name one of a few values (upload_mode, upload_sync, log.level,
// log.format, tls.mode, storage.backend, listing.symlinks, a user's access
// and tls) into types such as [TLSMode] and [Access], which convert to the
// server's and auth's own: no other package reads their text.
//
// [Config.LooseFiles] lists the files holding secrets (the TLS key,
// users_file, admin.token_file, the main file when it holds [[users]]) that
// others may read or change, for a warning: they don't stop start-up.
//
// Only cmd/wharf imports this package; it hands the other packages plain
// options built from the checked Config.
package config
