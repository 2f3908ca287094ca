package server

import "testing"

func TestAddrKey(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		ip     string
		prefix int
		want   string
	}{
		{"192.0.2.7", 64, "192.0.2.7"},
		{"::ffff:192.0.2.7", 64, "192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", 64, "2001:db8:1:3::/64"},
		{"2001:db8:1:2::1", 48, "2001:db8:1::/48"},
		{"2001:db8::1", 128, "2001:db8::1"},
		{"2001:db8::1", 0, "2001:db8::1"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"pipe", 64, "pipe"},
	} {
		if got := addrKey(tc.ip, tc.prefix); got != tc.want {
			t.Errorf("addrKey(%q, %d) = %q, want %q", tc.ip, tc.prefix, got, tc.want)
		}
	}
}
