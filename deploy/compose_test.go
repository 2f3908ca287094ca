package deploy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// composeFile is the part of the Compose specification that
// docker-compose.yml uses. Decoding is strict, so a key the file gains must
// be added here, and a misspelt one (`readonly`) fails the test instead of
// being ignored by compose.
type composeFile struct {
	Services map[string]composeService `json:"services"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
}

type composeService struct {
	Image           string            `json:"image"`
	PullPolicy      string            `json:"pull_policy"`
	Restart         string            `json:"restart"`
	ReadOnly        bool              `json:"read_only"`
	CapDrop         []string          `json:"cap_drop"`
	SecurityOpt     []string          `json:"security_opt"`
	Ports           []string          `json:"ports"`
	Environment     map[string]string `json:"environment"`
	Secrets         []string          `json:"secrets"`
	Volumes         []string          `json:"volumes"`
	StopGracePeriod string            `json:"stop_grace_period"`
}

// interpolation is compose's ${NAME}, ${NAME:-default} or ${NAME:?error}.
var interpolation = regexp.MustCompile(`\$\{([A-Z_]+)(:[-?][^}]*)?\}`)

// TestCompose decodes docker-compose.yml strictly, checks its hardening and
// ports against deploy/kubernetes, and has wharf load the configuration the
// container starts with when the README's steps are followed (the users
// file made from wharf-users.toml.example, ./ftp/public and ./ftp/home made).
func TestCompose(t *testing.T) {
	data, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}

	var f composeFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}

	s, ok := f.Services["wharf"]
	if !ok || len(f.Services) != 1 {
		t.Fatalf("want the one service wharf, have %v", f.Services)
	}

	t.Run("the container is locked down as in Kubernetes", func(t *testing.T) {
		if !s.ReadOnly {
			t.Error("read_only is not true")
		}

		if !slices.Equal(s.CapDrop, []string{"ALL"}) {
			t.Errorf("cap_drop %v, want [ALL]", s.CapDrop)
		}

		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("security_opt %v lacks no-new-privileges:true", s.SecurityOpt)
		}

		if strings.HasPrefix(s.Image, "localhost/") && s.PullPolicy != "never" && s.PullPolicy != "missing" {
			t.Errorf("image %s with pull_policy %q: no registry has it", s.Image, s.PullPolicy)
		}
	})

	// The container's file system, as the README's steps make it.
	p := newPod(t)
	env, workdir := p.image(t)

	for name, value := range s.Environment {
		// The test stands for the operator who sets WHARF_PUBLIC_HOST.
		value = interpolation.ReplaceAllString(value, "203.0.113.10")
		env = append(env, name+"="+value)
	}

	example, err := os.ReadFile("wharf-users.toml.example")
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range s.Secrets {
		secret, ok := f.Secrets[name]
		if !ok {
			t.Fatalf("secret %q is not defined", name)
		}

		if secret.File != "./wharf-users.toml" {
			t.Fatalf("secret %q: file %q: the README makes ./wharf-users.toml", name, secret.File)
		}

		// Compose mounts a secret at /run/secrets/<name>; the README has
		// the file made from the example.
		p.write(t, "/run/secrets/"+name, string(example))
	}

	for _, v := range s.Volumes {
		host, ctr, _ := strings.Cut(v, ":")
		if host != "./ftp" {
			t.Fatalf("volume %q: the README makes ./ftp only", v)
		}

		p.mount(t, ctr) // empty: the image's create_missing makes public/ and the homes
	}

	cfg := p.load(t, workdir, env)

	t.Run("the anonymous tree is ./ftp/public and the example holds no account", func(t *testing.T) {
		if got := p.path("/srv/ftp/public"); p.resolve(workdir, cfg.Anonymous.Root) != got {
			t.Errorf("anonymous.root %q is not %s", cfg.Anonymous.Root, got)
		}

		if len(cfg.Users) != 0 {
			t.Errorf("wharf-users.toml.example holds accounts: %v", cfg.Users)
		}
	})

	t.Run("the control port and every passive port are published, passive ones unchanged", func(t *testing.T) {
		published := map[int]int{} // container port -> host port
		for _, spec := range s.Ports {
			hostPorts, ctrPorts, ok := strings.Cut(spec, ":")
			if !ok {
				t.Fatalf("port %q: write HOST:CONTAINER", spec)
			}

			hlo, hhi := portRange(t, hostPorts)
			clo, chi := portRange(t, ctrPorts)
			for i := range chi - clo + 1 {
				published[clo+i] = hlo + min(i, hhi-hlo)
			}
		}

		if _, ok := published[listenPort(t, cfg.Listen)]; !ok {
			t.Errorf("the control port %d is not published", listenPort(t, cfg.Listen))
		}

		lo, hi := cfg.PassiveRange()
		for port := lo; port <= hi; port++ {
			if published[port] != port {
				t.Errorf("passive port %d is published as %d: PASV announces the container's own port", port, published[port])
			}
		}

		if len(published) != hi-lo+2 {
			t.Errorf("%d ports published, want the control port and %d passive ports", len(published), hi-lo+1)
		}
	})

	t.Run("the ports are those of Kubernetes", func(t *testing.T) {
		c := loadCluster(t)
		d := c.deployments[0]
		k := podConfig(t, c, d.Spec.Template.Spec, d.Spec.Template.Spec.Containers[0])

		if cfg.Listen != k.Listen || !slices.Equal(cfg.PassivePorts, k.PassivePorts) {
			t.Errorf("compose listens on %s, passive %v; Kubernetes on %s, passive %v", cfg.Listen, cfg.PassivePorts, k.Listen, k.PassivePorts)
		}

		// Clients reach the control port on 21 in both.
		control := listenPort(t, cfg.Listen)
		if !slices.Contains(s.Ports, fmt.Sprintf("21:%d", control)) {
			t.Errorf("compose publishes %v, not 21:%d", s.Ports, control)
		}

		if !slices.ContainsFunc(c.services[0].Spec.Ports, func(sp corev1.ServicePort) bool {
			return sp.Port == 21 && sp.TargetPort.IntValue() == control
		}) {
			t.Errorf("the Service has no port 21 leading to %d", control)
		}
	})

	t.Run("compose waits for a graceful shutdown", func(t *testing.T) {
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil || grace <= cfg.ShutdownTimeout.Duration {
			t.Errorf("stop_grace_period %q (%v) is not longer than shutdown_timeout %v", s.StopGracePeriod, err, cfg.ShutdownTimeout.Duration)
		}
	})
}

// portRange reads "21" or "50000-50019".
func portRange(t *testing.T, s string) (lo, hi int) {
	t.Helper()

	a, b, isRange := strings.Cut(s, "-")
	if !isRange {
		b = a
	}

	lo, errA := strconv.Atoi(a)
	hi, errB := strconv.Atoi(b)
	if errA != nil || errB != nil || lo > hi {
		t.Fatalf("port %q: want a port or a range lo-hi", s)
	}

	return lo, hi
}
