package config

import (
	"math"
	"strings"
	"testing"
)

func TestParseSize(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "0B", want: 0},
		{in: "1B", want: 1},
		{in: "100MiB", want: 100 << 20},
		{in: "10 MiB", want: 10 << 20},
		{in: "10   KiB", want: 10 << 10},
		{in: "1.5GiB", want: 3 << 29},
		{in: "1.5 KB", want: 1500},
		{in: "2TiB", want: 2 << 40},
		{in: "3TB", want: 3e12},
		{in: "1MB", want: 1e6},
		{in: "1GB", want: 1e9},
		{in: "0.0001KiB", want: 0}, // 0.1024 bytes, rounded down
		{in: "1.0009KB", want: 1000},
		{in: "007KiB", want: 7 << 10},
		{in: "8388607.999999TiB", want: 9223372036853676296}, // rounded down, below the limit
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "9223372036854775807B", want: math.MaxInt64},

		{in: "10 MiBs", wantErr: `"10 MiBs": unknown unit "MiBs" (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)`},
		{in: "10mib", wantErr: `unknown unit "mib"`},
		{in: "10kB", wantErr: `unknown unit "kB"`},
		{in: "10k", wantErr: `unknown unit "k"`},
		{in: "10b", wantErr: `unknown unit "b"`},
		{in: "10MiB ", wantErr: `unknown unit "MiB "`},
		{in: "1e3", wantErr: `unknown unit "e3"`},
		{in: "-1", wantErr: `"-1": must not be negative`},
		{in: "-1MiB", wantErr: `"-1MiB": must not be negative`},
		{in: "1.5", wantErr: `"1.5": a decimal needs a unit`},
		{in: "", wantErr: `"" is not a size`},
		{in: "MiB", wantErr: `"MiB" is not a size`},
		{in: " 1MiB", wantErr: `" 1MiB" is not a size`},
		{in: "+1", wantErr: `"+1" is not a size`},
		{in: ".5MiB", wantErr: `".5MiB" is not a size`},
		{in: "1.MiB", wantErr: `"1.MiB" is not a size`},
		{in: "1.2.3MiB", wantErr: `"1.2.3MiB" is not a size`},
		{in: "9223372036854775808", wantErr: `"9223372036854775808": too large`},
		{in: "8388608TiB", wantErr: `"8388608TiB": too large`},
		{in: "99999999999999999999999999999GB", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()

			got, err := ParseSize(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ParseSize(%q) = %d, %v, want error %q", tt.in, got, err, tt.wantErr)
				}

				return
			}

			if err != nil || got != tt.want {
				t.Errorf("ParseSize(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestSizeString(t *testing.T) {
	t.Parallel()

	tests := map[int64]string{
		0:             "0",
		1:             "1B",
		1000:          "1KB",
		1024:          "1KiB",
		1500:          "1500B",
		100 << 20:     "100MiB",
		10_000_000:    "10MB",
		3 << 29:       "1536MiB",
		5 << 40:       "5TiB",
		2e12:          "2TB",
		math.MaxInt64: "9223372036854775807B",
	}
	for n, want := range tests {
		s := Size{n}
		if got := s.String(); got != want {
			t.Errorf("Size{%d}.String() = %q, want %q", n, got, want)
		}

		text, err := s.MarshalText()
		if back, perr := ParseSize(string(text)); err != nil || perr != nil || back != n {
			t.Errorf("ParseSize(MarshalText(%d) = %q) = %d, %v", n, text, back, perr)
		}
	}
}

func TestUserLimits(t *testing.T) {
	t.Parallel()

	c := Default()
	c.Bandwidth.SessionDownload = Size{1000}
	c.Bandwidth.SessionUpload = Size{2000}

	tests := []struct {
		name                   string
		user                   User
		wantDownload, wantUpld int64
	}{
		{name: "a user without limits inherits [bandwidth]", user: User{}, wantDownload: 1000, wantUpld: 2000},
		{
			name:         "a user's own limits replace [bandwidth]",
			user:         User{SessionDownload: &Size{5}, SessionUpload: &Size{6}},
			wantDownload: 5, wantUpld: 6,
		},
		{
			name:         "a user's 0 means unlimited, not inherited",
			user:         User{SessionDownload: &Size{0}},
			wantDownload: 0, wantUpld: 2000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			if got := tt.user.DownloadLimit(c); got != tt.wantDownload {
				t.Errorf("DownloadLimit() = %d, want %d", got, tt.wantDownload)
			}
			if got := tt.user.UploadLimit(c); got != tt.wantUpld {
				t.Errorf("UploadLimit() = %d, want %d", got, tt.wantUpld)
			}
		})
	}
}

// TestValidateRefusesNegativeSizes covers a Config built in code: the file
// can't hold a negative size, since decoding refuses it.
func TestValidateRefusesNegativeSizes(t *testing.T) {
	t.Parallel()

	c := Default()
	c.Anonymous.Root = t.TempDir()
	c.Anonymous.MaxUploadSize = Size{-1}
	c.Bandwidth.TotalUpload = Size{-2}
	c.Users = []User{{
		Name:          "alice",
		Password:      "$2a$10$snzLGmWj4NHnIXRtifllo.q8AiQjqVs6bt/qnNYoOTU6Aqm5/oVP.",
		Home:          c.Anonymous.Root,
		SessionUpload: &Size{-3},
	}}

	err := c.Validate()
	want := "anonymous.max_upload_size: must not be negative, got -1\n" +
		"bandwidth.total_upload: must not be negative, got -2\n" +
		`users[0] "alice": session_upload: must not be negative, got -3`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

// FuzzParseSize checks that ParseSize never panics, never returns a negative
// size, and that String writes a size ParseSize reads back the same.
func FuzzParseSize(f *testing.F) {
	for _, seed := range []string{
		"0", "1048576", "100MiB", "10 MiB", "1.5GiB", "1.5 GB", "8388607TiB", "8388608TiB",
		"9223372036854775807", "9223372036854775808", "-1", "-1MiB", "1.5", "", "MiB", "10 MiBs",
		"10mb", "1.2.3KB", ".5KiB", "1.KiB", "0.0000000000000000001TB", "1e3", " 1B", "1\tB",
	} {
		f.Add(seed)
	}

	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			if n != 0 {
				t.Errorf("ParseSize(%q) = %d with error %v, want 0", s, n, err)
			}

			return
		}

		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d, a negative size", s, n)
		}

		str := Size{n}.String()
		if back, err := ParseSize(str); err != nil || back != n {
			t.Errorf("ParseSize(%q) = %d, but ParseSize(Size{%d}.String() = %q) = %d, %v", s, n, n, str, back, err)
		}
	})
}
