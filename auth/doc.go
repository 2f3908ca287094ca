// Package auth decides who may log in and what they may do once inside.
//
// Accounts come from the configuration: virtual users with bcrypt password
// hashes, plus an optional anonymous account ("anonymous" or "ftp" with any
// password, as RFC 1635 describes). Every refusal is the same
// ErrLoginIncorrect, and an unknown name costs one bcrypt comparison against a
// fixed dummy hash, so neither the reply nor its timing tells which names exist.
package auth
