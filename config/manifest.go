package config

import (
	"time"

	"wharf/server"
)

// Manifest is the [manifest] table: /ls-lR.gz and /manifest.json, made in
// the background for crawlers (MirrorManager, mirrorbits) at the root of the
// anonymous tree, so that they need not walk every folder with LIST and MDTM.
type Manifest struct {
	Enabled    bool     `toml:"enabled"`     // false
	Interval   Duration `toml:"interval"`    // "10m", at least 1s: how often the tree is looked at for changes
	MaxEntries int      `toml:"max_entries"` // 1000000, >= 0 (0: no bound): entries one manifest lists
	TimeLimit  Duration `toml:"time_limit"`  // "10m", >= 0 (0: no bound): how long one walk of the tree may take
}

// DefaultManifest is [manifest]'s default.
func DefaultManifest() Manifest {
	return Manifest{Interval: Duration{10 * time.Minute}, MaxEntries: 1_000_000, TimeLimit: Duration{10 * time.Minute}}
}

func (m Manifest) check(p *problems, anonymous bool) {
	if m.Interval.Duration < time.Second {
		p.addf("manifest.interval", "must be at least 1s, got %s", m.Interval)
	}

	if m.MaxEntries < 0 {
		p.addf("manifest.max_entries", "must not be negative (0: no bound), got %d", m.MaxEntries)
	}

	if m.TimeLimit.Duration < 0 {
		p.addf("manifest.time_limit", "must not be negative (0: no bound), got %s", m.TimeLimit)
	}

	if m.Enabled && !anonymous {
		p.addf("manifest.enabled", "true needs anonymous.enabled: the manifest shows the anonymous tree")
	}
}

// ManifestOptions is [manifest] as the server takes it.
func (m Manifest) ManifestOptions() server.Manifest {
	return server.Manifest{
		Enabled: m.Enabled, Interval: m.Interval.Duration, MaxEntries: m.MaxEntries, TimeLimit: m.TimeLimit.Duration,
	}
}
