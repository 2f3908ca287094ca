// Command wharf is an FTP server for public mirrors and upload accounts.
//
// Usage:
//
//	wharf [FILE]                  serve (without a file: ./public, anonymous, read-only, port 2121)
//	wharf check-config [FILE] [-print]
//	wharf doctor [FILE]           check that clients can reach the ports; print what to fix
//	wharf healthcheck [FILE] [-addr HOST:PORT]
//	wharf hash-password           read a password on stdin, print its bcrypt hash
//	wharf version
//	wharf help [COMMAND]
//
// FILE may also be given as -config FILE. Every configuration key but
// [[users]] can also come from a WHARF_* environment variable (see wharf
// help). Help goes to stdout; a command line wharf cannot run exits 2, any
// other failure 1.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wharf:", err)
		os.Exit(exitCode(err))
	}
}
