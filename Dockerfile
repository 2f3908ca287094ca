# wharf's container image: one static binary FROM scratch, running as a
# non-root user. Build it with `make image`, which first builds bin/wharf
# (CGO_ENABLED=0) and lays out build/image/; this file pulls no base image,
# so it builds where no registry is reachable.
#
#   podman build --format docker -t localhost/wharf:latest .
#   (the docker format keeps HEALTHCHECK; the default OCI format drops it)
FROM scratch

COPY --chown=10001:10001 build/image/ /

USER 10001:10001
WORKDIR /srv/ftp
VOLUME ["/srv/ftp"]
EXPOSE 2121 50000-50100

HEALTHCHECK --interval=30s --timeout=6s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/wharf", "healthcheck", "-optional-config", "/etc/wharf/wharf.toml"]

# /etc/wharf/wharf.toml: the image ships one (deploy/image-wharf.toml: serve
# /srv/ftp anonymously, read-only, on 2121, passive ports 50000-50100, JSON
# logs); mount yours over it. If the file is absent, wharf runs on its
# defaults. Environment variables (WHARF_*) override the file either way.
# SIGTERM shuts down gracefully.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wharf"]
CMD ["-optional-config", "/etc/wharf/wharf.toml"]
