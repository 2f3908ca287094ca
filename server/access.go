package server

import "net/netip"

// accessLists are [access] allow and deny: the client networks that may
// connect at all. The gate applies them to each connection before the
// greeting, by the client's own address (never by its IPv6 prefix).
type accessLists struct {
	allow, deny []netip.Prefix
}

// admits reports whether a client at a may connect: not in deny, and in
// allow unless allow is empty. Deny wins. An address that is not IP (never
// the case on TCP) is admitted only when allow is empty.
func (l accessLists) admits(a netip.Addr) bool {
	if inNetworks(a, l.deny) {
		return false
	}

	return len(l.allow) == 0 || inNetworks(a, l.allow)
}
