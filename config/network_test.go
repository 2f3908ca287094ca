package config

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestParseNetwork(t *testing.T) {
	t.Parallel()

	tests := []struct {
		text, want, wantErr string
	}{
		{text: "192.0.2.0/24", want: "192.0.2.0/24"},
		{text: "192.0.2.7", want: "192.0.2.7/32"},
		{text: "192.0.2.7/24", want: "192.0.2.0/24"}, // the host bits are dropped, as net.ParseCIDR does
		{text: "2001:db8::/32", want: "2001:db8::/32"},
		{text: "2001:DB8::7", want: "2001:db8::7/128"},
		{text: "0.0.0.0/0", want: "0.0.0.0/0"},
		{text: "::/0", want: "::/0"},
		{text: "", wantErr: `"" is not an IP address or network`},
		{text: "example.com", wantErr: `"example.com" is not an IP address or network`},
		{text: "192.0.2.0/33", wantErr: `"192.0.2.0/33" is not an IP address or network`},
		{text: " 192.0.2.1", wantErr: `" 192.0.2.1" is not an IP address or network`},
		{text: "::ffff:192.0.2.7", wantErr: `"::ffff:192.0.2.7" is an IPv4-mapped IPv6 address: write the IPv4 network (such as "192.0.2.7/32")`},
		{text: "::ffff:0:0/96", wantErr: `write the IPv4 network (such as "0.0.0.0/0")`},
		{text: "fe80::1%eth0", wantErr: `"fe80::1%eth0": an address with a zone (%eth0) can't be matched`},
	}
	for _, tt := range tests {
		t.Run(tt.text+" is "+tt.want+tt.wantErr, func(t *testing.T) {
			t.Parallel()

			n, err := ParseNetwork(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseNetwork(%q) = %v, %v; want an error with %q", tt.text, n, err, tt.wantErr)
				}

				return
			}

			if err != nil || n.String() != tt.want {
				t.Errorf("ParseNetwork(%q) = %v, %v; want %s", tt.text, n, err, tt.want)
			}
		})
	}
}

// Networks print as the CIDRs they were read into, which read back the same.
func TestNetworksPrintAndReadBack(t *testing.T) {
	t.Parallel()

	c := Default()
	c.Ban.Allow = []Network{mustNetwork(t, "192.0.2.7"), mustNetwork(t, "2001:db8::/32")}

	var out bytes.Buffer
	if err := toml.NewEncoder(&out).Encode(c.Ban); err != nil {
		t.Fatal(err)
	}
	if want := `allow = ["192.0.2.7/32", "2001:db8::/32"]`; !strings.Contains(out.String(), want) {
		t.Errorf("encoded [ban] =\n%s\nwant %s", out.String(), want)
	}

	var back Ban
	if _, err := toml.Decode(out.String(), &back); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Allow, c.Ban.Allow) {
		t.Errorf("read back %v, want %v", back.Allow, c.Ban.Allow)
	}

	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if got := Prefixes(c.Ban.Allow); !slices.Equal(got, want) {
		t.Errorf("Prefixes() = %v, want %v", got, want)
	}
}

// A Config built in code can hold the zero Network, which validation refuses.
func TestValidateRefusesTheZeroNetwork(t *testing.T) {
	t.Parallel()

	c := Default()
	c.Anonymous.Root = t.TempDir()
	c.Access.Deny = []Network{mustNetwork(t, "192.0.2.0/24"), {}}

	if err := c.Validate(); err == nil || err.Error() != "access.deny[1]: not an IP network" {
		t.Errorf("Validate() = %v, want access.deny[1] refused", err)
	}
}
