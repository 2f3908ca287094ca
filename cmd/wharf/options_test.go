package main

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"wharf/auth"
	"wharf/config"
	"wharf/server"
)

// The keys of issue 12 reach the server's and the accounts' options.
func TestOptionsCarryTheSecondWaveKeys(t *testing.T) {
	t.Parallel()

	network := func(s string) config.Network {
		n, err := config.ParseNetwork(s)
		if err != nil {
			t.Fatal(err)
		}

		return n
	}

	cfg := config.Default()
	cfg.MaxListingMemory = config.Size{Bytes: 64 << 20}
	cfg.UploadResumeWindow = config.Duration{Duration: time.Hour}
	cfg.TLS.RequireSessionReuse = false
	cfg.Anonymous.UploadQuota = config.Size{Bytes: 1 << 30}
	cfg.Anonymous.UploadMaxFiles, cfg.Anonymous.UploadMaxDepth, cfg.Anonymous.UploadRate = 100, 3, 7
	cfg.Anonymous.UploadBytesPerHour = config.Size{Bytes: 5 << 20}
	cfg.Ban.IPv6Prefix = 56
	cfg.Ban.Allow = []config.Network{network("192.0.2.7")}
	cfg.Access.Allow = []config.Network{network("10.0.0.0/8"), network("2001:db8::/32")}
	cfg.Access.Deny = []config.Network{network("10.9.0.0/16")}
	cfg.Users = []config.User{
		{Name: "drop", Access: config.Access(auth.WriteOnly), Overwrite: true},
		{Name: "strict", Access: config.Access(auth.WriteOnly)},
	}
	cfg.UploadMode = config.UploadDirect
	cfg.UploadSync = config.UploadSyncNever
	cfg.TLS.Mode = config.TLSMode(server.TLSImplicit)

	opts := serverOptions(cfg)

	if opts.AtomicUploads || !opts.NoUploadSync || opts.TLSMode != server.TLSImplicit {
		t.Errorf("AtomicUploads, NoUploadSync, TLSMode = %t, %t, %s; want false, true, implicit",
			opts.AtomicUploads, opts.NoUploadSync, opts.TLSMode)
	}

	if opts.MaxListingMemory != 64<<20 || opts.UploadResumeWindow != time.Hour || opts.RequireSessionReuse {
		t.Errorf("MaxListingMemory, UploadResumeWindow, RequireSessionReuse = %d, %s, %t; want 64 MiB, 1h, false",
			opts.MaxListingMemory, opts.UploadResumeWindow, opts.RequireSessionReuse)
	}

	wantDropBox := server.DropBoxLimits{Quota: 1 << 30, MaxFiles: 100, MaxDepth: 3, FilesPerMinute: 7, BytesPerHour: 5 << 20}
	if opts.DropBox != wantDropBox {
		t.Errorf("DropBox = %+v, want %+v", opts.DropBox, wantDropBox)
	}

	prefixes := func(s ...string) []netip.Prefix {
		out := make([]netip.Prefix, 0, len(s))
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}

		return out
	}

	if opts.IPv6Prefix != 56 || !slices.Equal(opts.Ban.Allow, prefixes("192.0.2.7/32")) {
		t.Errorf("IPv6Prefix, Ban.Allow = %d, %v; want 56, [192.0.2.7/32]", opts.IPv6Prefix, opts.Ban.Allow)
	}

	if !slices.Equal(opts.AccessAllow, prefixes("10.0.0.0/8", "2001:db8::/32")) ||
		!slices.Equal(opts.AccessDeny, prefixes("10.9.0.0/16")) {
		t.Errorf("AccessAllow, AccessDeny = %v, %v; want [access]'s networks", opts.AccessAllow, opts.AccessDeny)
	}

	// The defaults arrive as they are.
	def := serverOptions(config.Default())

	if !def.AtomicUploads || def.NoUploadSync || def.TLSMode != server.TLSOff || !def.RequireSessionReuse || def.MaxListingMemory != 256<<20 || def.UploadResumeWindow != 24*time.Hour ||
		def.IPv6Prefix != 64 || def.DropBox.Quota != 10<<30 || def.DropBox.FilesPerMinute != 60 ||
		len(def.AccessAllow) != 0 || len(def.AccessDeny) != 0 || len(def.Ban.Allow) != 0 {
		t.Errorf("default options = %+v", def)
	}

	users := accountOptions(cfg).Users
	if users[0].Access != auth.WriteOnly || users[1].Access != auth.WriteOnly {
		t.Errorf("Access = %s, %s; want write-only", users[0].Access, users[1].Access)
	}
	if !users[0].Overwrite || users[1].Overwrite {
		t.Errorf("Overwrite = %t, %t; want true for drop, false for strict", users[0].Overwrite, users[1].Overwrite)
	}
}

// listing.cache_ttl = "0s" keeps no listing: the server's "none" is a
// negative value, since its 0 is the default.
func TestOptionsListingCacheTTL(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		ttl, want time.Duration
	}{
		{server.DefaultListingCacheTTL, server.DefaultListingCacheTTL},
		{30 * time.Second, 30 * time.Second},
		{0, -1},
	} {
		cfg := config.Default()
		cfg.Listing.CacheTTL = config.Duration{Duration: tc.ttl}

		if got := serverOptions(cfg).Listing.CacheTTL; got != tc.want {
			t.Errorf("cache_ttl %s: Options.Listing.CacheTTL = %s, want %s", tc.ttl, got, tc.want)
		}
	}
}
