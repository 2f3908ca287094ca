package server

import "net/netip"

// addrKey is a client address as per-address limits count it (bans,
// max_clients_per_ip, drop-box rates): an IPv4 address as it is, an IPv6
// address by its first prefix bits ([ban] ipv6_prefix), since one IPv6 host
// usually holds a whole /64. An IPv4-mapped IPv6 address counts as IPv4;
// prefix 0 or 128 counts each address; text that is not an address is
// returned as it is.
func addrKey(ip string, prefix int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}

	a = a.Unmap().WithZone("")
	if a.Is4() || prefix <= 0 || prefix >= 128 {
		return a.String()
	}

	p, err := a.Prefix(prefix)
	if err != nil {
		return a.String()
	}

	return p.String()
}

// parseIP reads a client address as allow and deny lists see it: an
// IPv4-mapped IPv6 address as IPv4, without zone. Text that is not an address
// gives the zero Addr, which no network holds.
func parseIP(ip string) netip.Addr {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Addr{}
	}

	return a.Unmap().WithZone("")
}

// inNetworks reports whether one of nets holds a (config refuses networks
// written as IPv4-mapped IPv6, so an unmapped address is all it takes).
func inNetworks(a netip.Addr, nets []netip.Prefix) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}

	return false
}
