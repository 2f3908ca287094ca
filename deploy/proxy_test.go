package deploy

import (
	"os"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestKubernetesProxyProtocol checks the Service of
// kubernetes-proxy-protocol/ (README "Behind a load balancer"): it decodes
// strictly, replaces kubernetes/service.yaml port for port, asks the AWS
// balancer for the PROXY protocol instead of externalTrafficPolicy: Local,
// and the [proxy_protocol] table its comment gives loads in the pod.
func TestKubernetesProxyProtocol(t *testing.T) { // not parallel: podConfig changes the working folder
	data, err := os.ReadFile("kubernetes-proxy-protocol/service.yaml")
	if err != nil {
		t.Fatal(err)
	}

	svc, err := decodeNamed(data, &corev1.Service{})
	if err != nil {
		t.Fatalf("kubernetes-proxy-protocol/service.yaml: %v", err)
	}

	c := loadCluster(t)
	if len(c.services) != 1 || len(c.deployments) != 1 {
		t.Fatalf("deploy/kubernetes has %d Services and %d Deployments, want one each", len(c.services), len(c.deployments))
	}

	orig := c.services[0]
	if svc.Name != orig.Name || svc.Spec.Type != orig.Spec.Type || !reflect.DeepEqual(svc.Spec.Selector, orig.Spec.Selector) ||
		!reflect.DeepEqual(svc.Spec.Ports, orig.Spec.Ports) {
		t.Errorf("the Service does not replace kubernetes/service.yaml: name, type, selector or ports differ")
	}

	if got := svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-proxy-protocol"]; got != "*" {
		t.Errorf("aws-load-balancer-proxy-protocol = %q, want \"*\"", got)
	}

	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		t.Error("externalTrafficPolicy: Local, which the PROXY protocol replaces")
	}

	// The table the comment says to add, added to the ConfigMap's wharf.toml.
	var table []string
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "#   "); ok {
			table = append(table, rest)
		}
	}

	cm := c.configMaps["wharf"]
	if cm == nil || len(table) == 0 {
		t.Fatalf("no ConfigMap wharf, or no [proxy_protocol] table in the comment (%d lines)", len(table))
	}

	cm.Data["wharf.toml"] += "\n" + strings.Join(table, "")

	spec := c.deployments[0].Spec.Template.Spec
	cfg := podConfig(t, c, spec, spec.Containers[0])
	if len(cfg.ProxyProtocol.Trusted) == 0 {
		t.Error("the pod's configuration trusts no balancer")
	}
}
