package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// Network is an item of [ban] allow, [access] allow and [access] deny: an IP
// network such as "192.0.2.0/24" or "2001:db8::/32", or a single address
// ("192.0.2.7", "2001:db8::7"), which is the network of that address alone
// (/32 or /128). It is decoded once, here, into the prefix the server
// matches client addresses against.
type Network struct{ netip.Prefix }

// ParseNetwork reads a network as written in the file. The address bits
// beyond the prefix length are dropped ("192.0.2.7/24" is 192.0.2.0/24), as
// net.ParseCIDR does. An IPv4-mapped IPv6 address is refused: wharf compares
// IPv4 clients as IPv4, so "::ffff:192.0.2.0/120" would never match; the
// message says to write it as IPv4.
func ParseNetwork(s string) (Network, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil && !strings.Contains(s, "/") {
		var a netip.Addr
		if a, err = netip.ParseAddr(s); err == nil {
			if a.Zone() != "" {
				return Network{}, fmt.Errorf("%q: an address with a zone (%%%s) can't be matched; leave the zone out", s, a.Zone())
			}

			p = netip.PrefixFrom(a, a.BitLen())
		}
	}

	if err != nil {
		return Network{}, fmt.Errorf(`%q is not an IP address or network (write it like "192.0.2.0/24", "2001:db8::/32" or "192.0.2.7")`, s)
	}

	if p.Addr().Is4In6() {
		return Network{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address: write the IPv4 network (such as %q)", s,
			netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked())
	}

	return Network{p.Masked()}, nil
}

// UnmarshalText reads a network as written in the file (see ParseNetwork).
func (n *Network) UnmarshalText(text []byte) error {
	v, err := ParseNetwork(string(text))
	if err != nil {
		return err
	}

	*n = v

	return nil
}

// MarshalText writes the network as a CIDR ("192.0.2.7/32" for a single
// address), which UnmarshalText reads back. The zero Network, which only a
// Config built in code can hold, writes as "".
func (n Network) MarshalText() ([]byte, error) {
	return n.Prefix.MarshalText()
}

// Prefixes returns the networks as the server takes them.
func Prefixes(networks []Network) []netip.Prefix {
	out := make([]netip.Prefix, len(networks))
	for i, n := range networks {
		out[i] = n.Prefix
	}

	return out
}

// checkNetworks refuses an invalid network, which only a Config built in
// code can hold (decoding refuses it), naming its key and index.
func checkNetworks(p *problems, key string, networks []Network) {
	for i, n := range networks {
		if !n.IsValid() {
			p.addf(fmt.Sprintf("%s[%d]", key, i), "not an IP network")
		}
	}
}
