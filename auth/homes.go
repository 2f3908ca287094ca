package auth

import (
	"slices"
	"strings"
)

// Homes returns the home folder of every account, the anonymous root
// included, each once and sorted: the folders a server may serve, for work
// it does on each at start-up (the reclaim of upload leftovers).
func (a *Accounts) Homes() []string {
	homes := make([]string, 0, len(a.users)+1)
	if a.opts.Anonymous && a.opts.AnonymousRoot != "" {
		homes = append(homes, a.opts.AnonymousRoot)
	}

	for _, u := range a.users {
		homes = append(homes, u.Home)
	}

	slices.SortFunc(homes, strings.Compare)

	return slices.Compact(homes)
}
