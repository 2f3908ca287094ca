// Package deploy holds wharf's deployment files and their tests; it has no
// code of its own.
//
//   - The container image's configuration file (image-wharf.toml; the
//     Dockerfile and `make image` are at the top of the repository).
//     TestImage builds the image with podman and uses it with a real FTP
//     client, configured through WHARF_* variables only and through a
//     mounted file that holds only an account.
//   - docker-compose.yml and wharf-users.toml.example. TestCompose decodes
//     the file strictly, checks its hardening and ports, and has wharf's
//     configuration loader accept what the container starts with.
//   - kubernetes/: every manifest decodes strictly into its Kubernetes API
//     type, and TestKubernetes checks that the objects fit together (names,
//     ports, labels, probes) and that wharf accepts the configuration the
//     pod starts with.
//   - kubernetes-proxy-protocol/: the Service of kubernetes/ behind a
//     balancer that sends the PROXY protocol; TestKubernetesProxyProtocol
//     checks that it replaces kubernetes/service.yaml and that the pod loads
//     the [proxy_protocol] table its comment gives.
//   - wharf.service and wharf.sysusers, checked by systemd-analyze verify and
//     security and by systemd-sysusers.
package deploy
