// Package auth decides who may log in and what they may do once inside.
//
// Accounts come from the configuration: virtual users with bcrypt password
// hashes, plus an optional anonymous account ("anonymous" or "ftp" with any
// password, as RFC 1635 describes). Every refusal is the same
// ErrLoginIncorrect, and an unknown name costs one bcrypt comparison against a
// fixed dummy hash, so neither the reply nor its timing tells which names exist.
//
// Each named account also has a TLSRule. On a server that offers TLS,
// Accounts.NeedsTLS (and Account.NeedsTLS after a login) says whether the
// account must log in over TLS and transfer with PROT P (RFC 4217), as
// vsftpd's force_local_logins_ssl and force_local_data_ssl: by default yes,
// unless Options.ClearTextAccounts; anonymous logins never need it.
package auth
