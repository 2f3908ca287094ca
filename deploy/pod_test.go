package deploy

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"wharf/config"
)

// pod is the file system a wharf container sees (the image, then what is
// mounted into it), laid out below a temporary folder, so that wharf's own
// configuration loader can check a deployment as the container would start
// it: the file that WHARF_CONFIG names, the users file, the served trees.
type pod struct {
	root string
}

func newPod(t *testing.T) *pod {
	t.Helper()

	return &pod{root: t.TempDir()}
}

// path is where the container's absolute path p lies on this machine.
func (p *pod) path(containerPath string) string {
	return filepath.Join(p.root, filepath.FromSlash(containerPath))
}

// resolve is the pod path of a configured path, relative ones in workdir,
// as the container's process sees it.
func (p *pod) resolve(workdir, name string) string {
	if filepath.IsAbs(name) {
		return filepath.Clean(name) // rebased already
	}

	return filepath.Join(p.path(workdir), name)
}

// rebase moves the absolute paths quoted in a TOML text (`"/srv/ftp"`) into
// the pod. Every path in the deployment files is written that way.
func (p *pod) rebase(text string) string {
	return strings.ReplaceAll(text, `"/`, `"`+p.root+`/`)
}

// write puts a mounted file into the pod, its paths rebased.
func (p *pod) write(t *testing.T, containerPath, content string) {
	t.Helper()

	p.mkdir(t, filepath.Dir(containerPath))

	if err := os.WriteFile(p.path(containerPath), []byte(p.rebase(content)), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *pod) mkdir(t *testing.T, containerPath string) {
	t.Helper()

	if err := os.MkdirAll(p.path(containerPath), 0o755); err != nil {
		t.Fatal(err)
	}
}

// load has wharf's configuration loader run as the container's process
// would: in workdir, with env (the image's variables, then the
// deployment's), reading the file that WHARF_CONFIG names. It does so in a
// subtest, whose working directory it changes, and stops the test if wharf
// refuses the configuration.
func (p *pod) load(t *testing.T, workdir string, env []string) config.Config {
	t.Helper()

	rebased := make([]string, len(env))
	for i, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(value, "/") {
			value = p.path(value)
		}

		rebased[i] = name + "=" + value
	}

	var cfg config.Config

	ok := t.Run("wharf accepts the configuration the container starts with", func(t *testing.T) {
		t.Chdir(p.path(workdir))

		c, unknown, err := config.Sources{Env: rebased}.Load()
		if err != nil {
			t.Fatal(err)
		}

		if len(unknown) > 0 {
			t.Errorf("variables that name no configuration key: %v", unknown)
		}

		cfg = c
	})
	if !ok {
		t.FailNow()
	}

	return cfg
}

// image lays out the image's files as make image does (its configuration
// file, the served trees) and returns the environment and working directory
// every container of the image starts with.
func (p *pod) image(t *testing.T) (env []string, workdir string) {
	t.Helper()

	conf, err := os.ReadFile("image-wharf.toml")
	if err != nil {
		t.Fatal(err)
	}

	p.write(t, "/etc/wharf/wharf.toml", string(conf))
	p.mkdir(t, "/srv/ftp/public")
	p.mkdir(t, "/srv/ftp/home")

	env, workdir = imageSettings(t)
	p.mkdir(t, workdir)

	return env, workdir
}

// mount empties containerPath, as a volume mounted there hides what the
// image has in it.
func (p *pod) mount(t *testing.T, containerPath string) {
	t.Helper()

	if err := os.RemoveAll(p.path(containerPath)); err != nil {
		t.Fatal(err)
	}

	p.mkdir(t, containerPath)
}

// imageSettings reads the Dockerfile's ENV and WORKDIR.
func imageSettings(t *testing.T) (env []string, workdir string) {
	t.Helper()

	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}

	// Join continued lines, then read the instructions.
	joined := strings.ReplaceAll(string(data), "\\\n", " ")

	sc := bufio.NewScanner(strings.NewReader(joined))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}

		switch fields[0] {
		case "ENV":
			for _, kv := range fields[1:] {
				if !strings.Contains(kv, "=") {
					t.Fatalf("Dockerfile: ENV %q: write ENV NAME=value", kv)
				}

				env = append(env, kv)
			}
		case "WORKDIR":
			workdir = fields[1]
		}
	}

	if workdir == "" {
		t.Fatal("Dockerfile: no WORKDIR")
	}

	return env, workdir
}

// listenPort is the port of a configured listen address.
func listenPort(t *testing.T, addr string) int {
	t.Helper()

	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}

	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}

	return n
}

// documents splits a multi-document YAML file on its "---" lines.
func documents(data []byte) [][]byte {
	var docs [][]byte

	var cur []byte
	for line := range bytes.Lines(data) {
		if bytes.Equal(bytes.TrimSpace(line), []byte("---")) {
			docs = append(docs, cur)
			cur = nil

			continue
		}

		cur = append(cur, line...)
	}

	return append(docs, cur)
}
