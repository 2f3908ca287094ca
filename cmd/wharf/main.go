// Command wharf is an FTP server for public mirrors and upload accounts.
//
// Usage:
//
//	wharf [-config FILE]            serve (without a file: ./public, anonymous, read-only, port 2121)
//	wharf check-config [-config FILE] [-print]
//	wharf healthcheck [-addr HOST:PORT]
//	wharf doctor [-config FILE]     check that clients can reach the ports; print what to fix
//	wharf hash-password             read a password on stdin, print its bcrypt hash
//	wharf -version
//
// Every configuration key but [[users]] can also come from a WHARF_*
// environment variable (see wharf -help).
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Environ(), os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wharf:", err)
		os.Exit(1)
	}
}
