package main

import (
	"net/netip"
	"slices"
	"testing"

	"wharf/config"
)

// [proxy_protocol] trusted reaches the server's options, networks and bare
// addresses alike.
func TestOptionsCarryTheTrustedBalancers(t *testing.T) {
	t.Parallel()

	cfg := config.Default()
	if got := serverOptions(cfg).ProxyTrusted; len(got) != 0 {
		t.Fatalf("ProxyTrusted by default = %v, want none", got)
	}

	for _, s := range []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32"} {
		n, err := config.ParseNetwork(s)
		if err != nil {
			t.Fatal(err)
		}

		cfg.ProxyProtocol.Trusted = append(cfg.ProxyProtocol.Trusted, n)
	}

	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32"),
	}
	if got := serverOptions(cfg).ProxyTrusted; !slices.Equal(got, want) {
		t.Errorf("ProxyTrusted = %v, want %v", got, want)
	}
}
