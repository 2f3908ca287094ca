package deploy

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"wharf/config"
)

// cluster is every object of deploy/kubernetes, decoded.
type cluster struct {
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	claims      map[string]*corev1.PersistentVolumeClaim
	services    []*corev1.Service
	deployments []*appsv1.Deployment
	policies    []*networkingv1.NetworkPolicy
}

// decodeStrict decodes a manifest into its API type, refusing a field the
// type doesn't have (a typo such as imagePulPolicy, a field at the wrong
// level) and a key given twice: the API server would drop the first, or
// refuse the object.
func decodeStrict(doc []byte, into any) error {
	return yaml.UnmarshalStrict(doc, into)
}

// loadCluster decodes every document of deploy/kubernetes/*.yaml into the
// Kubernetes API type its apiVersion and kind name.
func loadCluster(t *testing.T) cluster {
	t.Helper()

	c := cluster{
		configMaps: map[string]*corev1.ConfigMap{},
		secrets:    map[string]*corev1.Secret{},
		claims:     map[string]*corev1.PersistentVolumeClaim{},
	}

	files, err := filepath.Glob("kubernetes/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifest in deploy/kubernetes: %v", err)
	}

	for _, file := range files {
		if filepath.Ext(file) != ".yaml" {
			t.Errorf("%s: name manifests *.yaml, so that this test reads them", file)

			continue
		}

		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}

		for i, doc := range documents(data) {
			if err := c.add(doc); err != nil {
				t.Errorf("%s, document %d: %v", file, i+1, err)
			}
		}
	}

	return c
}

// add decodes one document; one holding only comments is skipped.
func (c *cluster) add(doc []byte) error {
	if j, err := yaml.YAMLToJSON(doc); err == nil && string(j) == "null" {
		return nil
	}

	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return err
	}

	switch meta.APIVersion + " " + meta.Kind {
	case "v1 ConfigMap":
		o, err := decodeNamed(doc, &corev1.ConfigMap{})
		c.configMaps[o.Name] = o

		return err
	case "v1 Secret":
		o, err := decodeNamed(doc, &corev1.Secret{})
		c.secrets[o.Name] = o

		return err
	case "v1 PersistentVolumeClaim":
		o, err := decodeNamed(doc, &corev1.PersistentVolumeClaim{})
		c.claims[o.Name] = o

		return err
	case "v1 Service":
		o, err := decodeNamed(doc, &corev1.Service{})
		c.services = append(c.services, o)

		return err
	case "apps/v1 Deployment":
		o, err := decodeNamed(doc, &appsv1.Deployment{})
		c.deployments = append(c.deployments, o)

		return err
	case "networking.k8s.io/v1 NetworkPolicy":
		o, err := decodeNamed(doc, &networkingv1.NetworkPolicy{})
		c.policies = append(c.policies, o)

		return err
	}

	return fmt.Errorf("apiVersion %q kind %q: not a type this test knows; add it", meta.APIVersion, meta.Kind)
}

// decodeNamed decodes doc strictly into o, which must have a name.
func decodeNamed[T metav1.Object](doc []byte, o T) (T, error) {
	if err := decodeStrict(doc, o); err != nil {
		return o, err
	}

	if o.GetName() == "" {
		return o, errors.New("no metadata.name")
	}

	return o, nil
}

func TestDecodeStrictRefusesUnknownFields(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		doc  string
	}{
		{"a misspelt field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  strategy: {tpye: Recreate}\n"},
		{"a field at the wrong level", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nselector: {app: wharf}\n"},
		{"a key given twice", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			c := cluster{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}, claims: map[string]*corev1.PersistentVolumeClaim{}}
			if err := c.add([]byte(tt.doc)); err == nil {
				t.Errorf("decoded without an error:\n%s", tt.doc)
			}
		})
	}
}

// TestKubernetes decodes deploy/kubernetes strictly and checks that its
// objects fit together, and that wharf accepts the configuration the pod
// starts with.
func TestKubernetes(t *testing.T) {
	c := loadCluster(t)
	if t.Failed() {
		t.FailNow()
	}

	if len(c.deployments) != 1 {
		t.Fatalf("want one Deployment, have %d", len(c.deployments))
	}

	d := c.deployments[0]
	spec := d.Spec.Template.Spec
	podLabels := labels.Set(d.Spec.Template.Labels)

	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(spec.Containers))
	}

	ctr := spec.Containers[0]
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}

	// The configuration the pod starts with, checked by wharf's loader.
	cfg := podConfig(t, c, spec, ctr)

	t.Run("the Deployment's selector picks its pods", func(t *testing.T) {
		if !selects(t, d.Spec.Selector, podLabels) {
			t.Errorf("selector %v does not match the pod's labels %v", d.Spec.Selector, podLabels)
		}
	})

	t.Run("a locally built image is not pulled", func(t *testing.T) {
		if strings.HasPrefix(ctr.Image, "localhost/") && ctr.ImagePullPolicy != corev1.PullIfNotPresent && ctr.ImagePullPolicy != corev1.PullNever {
			t.Errorf("image %s with imagePullPolicy %q: no registry has it, use IfNotPresent or Never", ctr.Image, ctr.ImagePullPolicy)
		}
	})

	t.Run("every mount names a volume whose source is defined", func(t *testing.T) {
		mounted := map[string]bool{}
		for _, m := range ctr.VolumeMounts {
			mounted[m.Name] = true
			if _, ok := volumes[m.Name]; !ok {
				t.Errorf("volumeMount %q: no such volume", m.Name)
			}
		}

		for name, v := range volumes {
			if !mounted[name] {
				t.Errorf("volume %q is mounted nowhere", name)
			}

			switch {
			case v.ConfigMap != nil:
				if c.configMaps[v.ConfigMap.Name] == nil {
					t.Errorf("volume %q: no ConfigMap %q", name, v.ConfigMap.Name)
				}
			case v.Secret != nil:
				optional := v.Secret.Optional != nil && *v.Secret.Optional
				if c.secrets[v.Secret.SecretName] == nil && !optional {
					t.Errorf("volume %q: no Secret %q (and it is not optional)", name, v.Secret.SecretName)
				}
			case v.PersistentVolumeClaim != nil:
				if c.claims[v.PersistentVolumeClaim.ClaimName] == nil {
					t.Errorf("volume %q: no PersistentVolumeClaim %q", name, v.PersistentVolumeClaim.ClaimName)
				}
			default:
				t.Errorf("volume %q: a source this test does not check", name)
			}
		}
	})

	t.Run("ConfigMaps and Secrets are mounted as folders, so that updates reach the pod", func(t *testing.T) {
		for _, m := range ctr.VolumeMounts {
			if m.SubPath != "" || m.SubPathExpr != "" {
				t.Errorf("volumeMount %q uses subPath: Kubernetes never updates it", m.Name)
			}
		}
	})

	t.Run("secret files are readable by wharf's group only", func(t *testing.T) {
		group := spec.SecurityContext.FSGroup
		if group == nil || spec.SecurityContext.RunAsGroup == nil || *group != *spec.SecurityContext.RunAsGroup {
			t.Errorf("fsGroup %v must be the group wharf runs as (%v), which reads the secrets", group, spec.SecurityContext.RunAsGroup)
		}

		for name, v := range volumes {
			if v.Secret == nil {
				continue
			}

			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440 {
				t.Errorf("volume %q: defaultMode %v, want 0440", name, v.Secret.DefaultMode)
			}
		}
	})

	ports := map[string]int32{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}

	containerPort := func(p intstr.IntOrString) (int32, bool) {
		if p.Type == intstr.String {
			n, ok := ports[p.StrVal]

			return n, ok
		}

		return p.IntVal, slices.ContainsFunc(ctr.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == p.IntVal })
	}

	lo, hi := cfg.PassiveRange()
	control := int32(listenPort(t, cfg.Listen))
	admin := int32(listenPort(t, cfg.Admin.Listen))

	t.Run("the container declares the control, admin and every passive port", func(t *testing.T) {
		want := []int32{control, admin}
		for p := lo; p <= hi; p++ {
			want = append(want, int32(p))
		}

		var have []int32
		for _, p := range ctr.Ports {
			have = append(have, p.ContainerPort)
		}

		slices.Sort(want)
		slices.Sort(have)

		if !slices.Equal(have, want) {
			t.Errorf("container ports %v, want %v (listen, admin.listen, passive_ports %d-%d)", have, want, lo, hi)
		}
	})

	t.Run("probes reach ports the container has and wharf serves", func(t *testing.T) {
		probes := map[string]*corev1.Probe{"startup": ctr.StartupProbe, "readiness": ctr.ReadinessProbe, "liveness": ctr.LivenessProbe}
		for kind, p := range probes {
			switch {
			case p == nil:
				t.Errorf("no %s probe", kind)
			case p.HTTPGet != nil:
				n, ok := containerPort(p.HTTPGet.Port)
				if !ok || n != admin {
					t.Errorf("%s probe: port %v is not the admin listener's (%d)", kind, p.HTTPGet.Port.String(), admin)
				}

				if p.HTTPGet.Path != "/healthz" && p.HTTPGet.Path != "/readyz" {
					t.Errorf("%s probe: path %q: wharf serves /healthz and /readyz", kind, p.HTTPGet.Path)
				}
			case p.Exec != nil:
				if want := []string{"/usr/local/bin/wharf", "healthcheck"}; !slices.Equal(p.Exec.Command[:min(2, len(p.Exec.Command))], want) {
					t.Errorf("%s probe: command %q, want %q", kind, p.Exec.Command, want)
				}

				// wharf healthcheck gives up after 5 seconds; the kubelet's default is 1.
				if p.TimeoutSeconds <= 5 {
					t.Errorf("%s probe: timeoutSeconds %d cuts wharf healthcheck short", kind, p.TimeoutSeconds)
				}
			default:
				t.Errorf("%s probe: a handler this test does not check", kind)
			}
		}
	})

	t.Run("the container has resource requests and limits", func(t *testing.T) {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := ctr.Resources.Requests[r]; !ok {
				t.Errorf("no %s request", r)
			}

			if _, ok := ctr.Resources.Limits[r]; !ok {
				t.Errorf("no %s limit", r)
			}
		}
	})

	t.Run("the pod outlives a graceful shutdown", func(t *testing.T) {
		grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		if grace <= cfg.ShutdownTimeout.Duration {
			t.Errorf("terminationGracePeriodSeconds %v is not longer than shutdown_timeout %v", grace, cfg.ShutdownTimeout.Duration)
		}
	})

	t.Run("the Service leads to the control port and every passive port, one to one", func(t *testing.T) {
		if len(c.services) != 1 {
			t.Fatalf("want one Service, have %d", len(c.services))
		}

		s := c.services[0]
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
			t.Errorf("selector %v does not match the pod's labels %v", s.Spec.Selector, podLabels)
		}

		targets := map[int32]int32{} // container port -> service port
		for _, p := range s.Spec.Ports {
			n, ok := containerPort(p.TargetPort)
			if !ok {
				t.Errorf("port %q: targetPort %s is not a container port", p.Name, p.TargetPort.String())

				continue
			}

			targets[n] = p.Port
		}

		if _, ok := targets[control]; !ok {
			t.Errorf("no Service port leads to the control port %d", control)
		}

		for p := lo; p <= hi; p++ {
			switch got, ok := targets[int32(p)]; {
			case !ok:
				t.Errorf("passive port %d: no Service port leads to it", p)
			case got != int32(p):
				t.Errorf("passive port %d is Service port %d: PASV announces the pod's own port, so publish it unchanged", p, got)
			}
		}

		if _, ok := targets[admin]; ok {
			t.Errorf("the Service publishes the admin port %d", admin)
		}

		if len(targets) != hi-lo+2 {
			t.Errorf("the Service leads to %d container ports, want %d: the control port and %d passive ports", len(targets), hi-lo+2, hi-lo+1)
		}
	})

	t.Run("the NetworkPolicy lets FTP in and keeps the admin port to chosen peers", func(t *testing.T) {
		if len(c.policies) != 1 {
			t.Fatalf("want one NetworkPolicy, have %d", len(c.policies))
		}

		np := c.policies[0]
		if !selects(t, &np.Spec.PodSelector, podLabels) || len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) == 0 {
			t.Errorf("podSelector %v does not select wharf's pods (%v) alone", np.Spec.PodSelector, podLabels)
		}

		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("policyTypes %v: without Ingress it limits nothing coming in", np.Spec.PolicyTypes)
		}

		// open: ports anyone may reach; limited: ports some peers may reach.
		open, limited := map[int32]bool{}, map[int32]bool{}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port == nil {
					t.Errorf("a rule for every port: %v", rule)

					continue
				}

				first, ok := containerPort(*p.Port)
				if !ok {
					t.Errorf("port %s is not a container port", p.Port.String())

					continue
				}

				last := first
				if p.EndPort != nil {
					last = *p.EndPort
				}

				for n := first; n <= last; n++ {
					if len(rule.From) == 0 {
						open[n] = true
					} else {
						limited[n] = true
					}
				}
			}
		}

		for p := lo; p <= hi; p++ {
			if !open[int32(p)] {
				t.Errorf("passive port %d is not open to clients", p)
			}
		}

		if !open[control] {
			t.Errorf("the control port %d is not open to clients", control)
		}

		if open[admin] || !limited[admin] {
			t.Errorf("the admin port %d: open to all %v, to chosen peers %v; want chosen peers only", admin, open[admin], limited[admin])
		}
	})

	t.Run("the users Secret holds no live account", func(t *testing.T) {
		if len(cfg.Users) != 0 {
			t.Errorf("accounts shipped in the manifests: %v", cfg.Users)
		}
	})
}

// selects reports whether sel matches set.
func selects(t *testing.T, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()

	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatal(err)
	}

	return s.Matches(set)
}

// podConfig lays out the container's file system (the image's settings, the
// Deployment's volumes filled from their ConfigMap, Secret or claim) and
// loads wharf's configuration in it, stopping the test if wharf refuses it.
func podConfig(t *testing.T, c cluster, spec corev1.PodSpec, ctr corev1.Container) config.Config {
	t.Helper()

	p := newPod(t)
	env, workdir := p.image(t)

	for _, e := range ctr.Env {
		if e.ValueFrom != nil {
			t.Fatalf("env %s: valueFrom: this test reads values only", e.Name)
		}

		env = append(env, e.Name+"="+e.Value)
	}

	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}

	for _, m := range ctr.VolumeMounts {
		v := volumes[m.Name]
		p.mount(t, m.MountPath)

		switch {
		case v.ConfigMap != nil && c.configMaps[v.ConfigMap.Name] != nil:
			for key, content := range c.configMaps[v.ConfigMap.Name].Data {
				p.write(t, path.Join(m.MountPath, key), content)
			}
		case v.Secret != nil && c.secrets[v.Secret.SecretName] != nil:
			s := c.secrets[v.Secret.SecretName]
			for key, content := range s.StringData {
				p.write(t, path.Join(m.MountPath, key), content)
			}

			for key, content := range s.Data {
				p.write(t, path.Join(m.MountPath, key), string(content))
			}
		}
	}

	// A fresh volume holds nothing: the image's create_missing makes the
	// anonymous tree and the homes (README "Kubernetes"), so the
	// configuration must load on the empty claim.
	return p.load(t, workdir, env)
}
