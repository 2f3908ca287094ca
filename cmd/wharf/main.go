// Command wharf is an FTP server for public mirrors and upload accounts.
//
// Usage:
//
//	wharf [-config FILE]            serve (without -config: ./public, anonymous, read-only, port 2121)
//	wharf check-config [-config FILE]
//	wharf hash-password             read a password on stdin, print its bcrypt hash
//	wharf -version
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wharf:", err)
		os.Exit(1)
	}
}
