package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"wharf/config"
	"wharf/internal/ftptest"
)

// doctorRun runs wharf doctor with a configuration file holding text (then
// an anonymous root) and returns its error and output.
func doctorRun(t *testing.T, text string) (string, error) {
	t.Helper()

	dir := t.TempDir()
	pub := mkdirs(t, dir, "pub")[0]
	file := writeFile(t, dir, "wharf.toml", text+fmt.Sprintf("\n[anonymous]\nroot = %q\n", pub))

	var out bytes.Buffer
	err := run(context.Background(), []string{"doctor", file}, nil, nil, &out, io.Discard)

	return out.String(), err
}

// lines returns the lines of out that start with tag ("OK", "PROBLEM"...).
func lines(out, tag string) []string {
	var found []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, tag+" ") {
			found = append(found, strings.TrimSpace(strings.TrimPrefix(line, tag)))
		}
	}

	return found
}

func TestDoctorFindsNothingWrongOnLoopback(t *testing.T) {
	t.Parallel()

	out, err := doctorRun(t, `listen = "127.0.0.1:0"
public_host = "127.0.0.1"
passive_ports = [28600, 28609]
`)
	if err != nil {
		t.Fatalf("doctor = %v\n%s", err, out)
	}

	if p := lines(out, "PROBLEM"); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}

	oks := lines(out, "OK")
	for port := 28600; port <= 28609; port++ {
		want := fmt.Sprintf("passive port %d: reachable at 127.0.0.1:%d", port, port)
		if !slices.Contains(oks, want) {
			t.Errorf("no OK line %q in\n%s", want, out)
		}
	}

	for _, want := range []string{
		"control port: 127.0.0.1:",
		"every connection from this machine arrived from 127.0.0.1: client addresses are preserved",
	} {
		if !slices.ContainsFunc(oks, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("no OK line starting %q in\n%s", want, out)
		}
	}

	// Loopback is fine for a test, but doctor says what it means.
	warns := lines(out, "WARN")
	if !slices.ContainsFunc(warns, func(l string) bool {
		return strings.HasPrefix(l, `public_host "127.0.0.1" is 127.0.0.1, a private or loopback address`)
	}) {
		t.Errorf("no warning about a loopback public_host in\n%s", out)
	}
	if !slices.ContainsFunc(warns, func(l string) bool {
		return strings.HasPrefix(l, "passive_ports 28600-28609 hold 10 ports for max_clients 1000")
	}) {
		t.Errorf("no warning about a small passive range in\n%s", out)
	}
	if !strings.HasSuffix(out, "no problems found\n") {
		t.Errorf("output does not end with its verdict:\n%s", out)
	}
}

func TestDoctorReportsATakenPassivePort(t *testing.T) {
	t.Parallel()

	// Another program holds a port of the range: take a free one and keep it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	taken := l.Addr().(*net.TCPAddr).Port
	free := freeTCPPort(t)

	out, err := doctorRun(t, fmt.Sprintf("listen = \"127.0.0.1:0\"\npublic_host = \"127.0.0.1\"\npassive_ports = [%d, %d]\n",
		min(taken, free), max(taken, free)))
	if err == nil {
		t.Fatalf("doctor succeeded with a passive port taken:\n%s", out)
	}

	problems := lines(out, "PROBLEM")
	want := fmt.Sprintf("passive port %d: can't listen on it", taken)
	if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, want) }) {
		t.Errorf("problems = %q, want one about port %d", problems, taken)
	}
	if ok := fmt.Sprintf("passive port %d: reachable at 127.0.0.1:%d", free, free); !slices.Contains(lines(out, "OK"), ok) {
		t.Errorf("the other ports are not OK:\n%s", out)
	}
}

// Next to a running wharf of the same configuration, doctor starts on a
// free port, says so, checks the configured control port (the running
// wharf answers), and reports the passive ports that wharf holds for its
// clients as its own: no problem, exit 0.
func TestDoctorBesideARunningServer(t *testing.T) {
	t.Parallel()

	s := startRun(t, nil, []string{
		"WHARF_LISTEN=127.0.0.1:0", "WHARF_PASSIVE_PORTS=28620-28621", "WHARF_LOG_FORMAT=json",
		"WHARF_ANONYMOUS_ROOT=" + t.TempDir(),
	})

	// A client of the running wharf holds a passive port.
	c := ftptest.Dial(t, s.addr, nil)
	c.Login("anonymous", "x")
	_, held, _ := net.SplitHostPort(c.Pasv())

	out, err := doctorRun(t, fmt.Sprintf("listen = %q\npublic_host = \"127.0.0.1\"\npassive_ports = [28620, 28621]\n", s.addr))
	if err != nil {
		t.Fatalf("doctor = %v\n%s", err, out)
	}

	_, port, _ := net.SplitHostPort(s.addr)
	notes := lines(out, "NOTE")
	for _, want := range []string{
		"control port " + port + " is in use by a wharf running here",
		"passive port " + held + ": in use by the wharf running here",
	} {
		if !slices.ContainsFunc(notes, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("no NOTE line starting %q in\n%s", want, out)
		}
	}
	if !slices.Contains(lines(out, "OK"), "control port: "+s.addr+" answers 220") {
		t.Errorf("the running server was not checked:\n%s", out)
	}
	if p := lines(out, "PROBLEM"); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
}

// A control port held by a server that is not this configuration's wharf
// (another greeting) does not excuse a passive port it holds.
func TestDoctorBesideAnotherServer(t *testing.T) {
	t.Parallel()

	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	go func() {
		for {
			conn, err := other.Accept()
			if err != nil {
				return
			}

			_, _ = io.WriteString(conn, "220 another ftpd ready\r\n")
			_ = conn.Close()
		}
	}()

	pasv, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pasv.Close()

	held := pasv.Addr().(*net.TCPAddr).Port
	out, err := doctorRun(t, fmt.Sprintf("listen = %q\npublic_host = \"127.0.0.1\"\npassive_ports = [%d, %d]\n",
		other.Addr().String(), held, held))
	if err == nil {
		t.Fatalf("doctor succeeded with a passive port held by another program:\n%s", out)
	}

	if want := fmt.Sprintf("passive port %d: can't listen on it", held); !slices.ContainsFunc(lines(out, "PROBLEM"),
		func(l string) bool { return strings.HasPrefix(l, want) }) {
		t.Errorf("no PROBLEM line starting %q in\n%s", want, out)
	}
	if slices.ContainsFunc(lines(out, "NOTE"), func(l string) bool { return strings.Contains(l, "wharf running here") }) {
		t.Errorf("another server was taken for wharf:\n%s", out)
	}
}

func TestDoctorConfigurationProblems(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, text, want string
	}{
		{
			name: "the passive range holds the control port",
			text: "listen = \"127.0.0.1:28645\"\npublic_host = \"127.0.0.1\"\npassive_ports = [28640, 28649]\n",
			want: "passive_ports 28640-28649 include port 28645 of listen",
		},
		{
			name: "the passive range holds the admin port",
			text: "listen = \"127.0.0.1:0\"\npublic_host = \"127.0.0.1\"\npassive_ports = [28650, 28659]\n[admin]\nlisten = \"127.0.0.1:28651\"\n",
			want: "passive_ports 28650-28659 include port 28651 of admin.listen",
		},
		{
			name: "an invalid configuration",
			text: "listen = \"127.0.0.1:0\"\nmax_clients = 0\n",
			want: "max_clients: must be at least 1, got 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			out, err := doctorRun(t, tt.text)
			if err == nil {
				t.Fatalf("doctor succeeded:\n%s", out)
			}

			if !slices.ContainsFunc(lines(out, "PROBLEM"), func(l string) bool { return strings.Contains(l, tt.want) }) {
				t.Errorf("no PROBLEM line with %q in\n%s", tt.want, out)
			}
		})
	}
}

func TestCheckAddresses(t *testing.T) {
	t.Parallel()

	private := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.0.0.5")}
	public := append(slices.Clone(private), netip.MustParseAddr("203.0.113.5"))

	tests := []struct {
		name     string
		host, ip string
		active   bool
		local    []netip.Addr
		want     string // a line of the report
	}{
		{"no public_host on a private network", "", "", false, private,
			"WARN    public_host is empty and this machine's addresses (10.0.0.5) are all private"},
		{"no public_host with a public address", "", "", false, public,
			"OK      public_host is empty: PASV replies announce the address each client connected to, such as 203.0.113.5"},
		{"a private public_host", "10.0.0.5", "10.0.0.5", false, private,
			`WARN    public_host "10.0.0.5" is 10.0.0.5, a private or loopback address`},
		{"a public public_host", "ftp.example.com", "198.51.100.7", false, private,
			`OK      public_host "ftp.example.com" is 198.51.100.7, a public address`},
		{"behind NAT", "ftp.example.com", "198.51.100.7", false, private,
			"NOTE    public_host 198.51.100.7 is not an address of this machine: wharf is behind NAT"},
		{"active mode behind NAT", "ftp.example.com", "198.51.100.7", true, private,
			"WARN    active_mode is on behind NAT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			cfg := config.Default()
			cfg.PublicHost, cfg.PublicIP, cfg.ActiveMode = tt.host, tt.ip, tt.active

			var out bytes.Buffer
			r := &report{w: &out}
			checkAddresses(r, cfg, tt.local)

			if !strings.Contains(out.String(), "\n"+tt.want) && !strings.HasPrefix(out.String(), tt.want) {
				t.Errorf("report lacks %q:\n%s", tt.want, out.String())
			}
			if r.problems != 0 {
				t.Errorf("%d problems, want none:\n%s", r.problems, out.String())
			}
		})
	}
}

func TestSamplePorts(t *testing.T) {
	t.Parallel()

	tests := []struct {
		lo, hi int
		want   []int
	}{
		{50000, 50000, []int{50000}},
		{50000, 50009, []int{50000, 50001, 50002, 50003, 50004, 50005, 50006, 50007, 50008, 50009}},
		{50000, 50100, []int{50000, 50011, 50022, 50033, 50044, 50055, 50066, 50077, 50088, 50100}},
		{50000, 50010, []int{50000, 50001, 50002, 50003, 50004, 50005, 50006, 50007, 50008, 50010}},
	}
	for _, tt := range tests {
		if got := samplePorts(tt.lo, tt.hi); !slices.Equal(got, tt.want) {
			t.Errorf("samplePorts(%d, %d) = %v, want %v", tt.lo, tt.hi, got, tt.want)
		}
	}
}

// freeTCPPort returns a port that was free a moment ago.
func freeTCPPort(t *testing.T) int {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	return l.Addr().(*net.TCPAddr).Port
}

// Passive ports listen on the listen address only, as wharf opens them: a
// public_host of this machine that is another address reaches none of them,
// and doctor says why.
func TestDoctorChecksPassivePortsOnTheListenAddress(t *testing.T) {
	t.Parallel()

	port := freeTCPPort(t)
	out, err := doctorRun(t, fmt.Sprintf("listen = \"127.0.0.2:0\"\npublic_host = \"127.0.0.1\"\npassive_ports = [%d, %d]\n",
		port, port))
	if err == nil {
		t.Fatalf("doctor succeeded with passive ports out of public_host's reach:\n%s", out)
	}

	want := fmt.Sprintf("passive port %d: 127.0.0.1:%d is not reachable", port, port)
	problems := lines(out, "PROBLEM")
	if !slices.ContainsFunc(problems, func(p string) bool {
		return strings.HasPrefix(p, want) && strings.Contains(p, "passive ports listen on the listen address 127.0.0.2 only")
	}) {
		t.Errorf("problems = %q, want one about port %d on the listen address", problems, port)
	}
}
