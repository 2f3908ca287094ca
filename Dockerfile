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
VOLUME ["/srv/ftp"]
EXPOSE 2121 50000-50100

# Where the image's settings live, so that a mounted configuration file keeps
# them (README "Containers"):
#
# - The layout is wharf's own defaults seen from this working directory:
#   anonymous.root "./public" is /srv/ftp/public. Accounts' homes go below
#   /srv/ftp/home, outside the anonymous tree. A file that sets its own root
#   wins, as a file does over any default.
# - WHARF_CREATE_MISSING makes /srv/ftp/public and the accounts' homes on a
#   fresh volume (the scratch image has no shell to make them).
# - A few settings are environment variables. WHARF_CONFIG names the file for
#   the server and for every other command run in the container
#   (check-config, doctor, healthcheck). The others win over the file, as
#   WHARF_* variables always do: change them with `-e`, not in the file.
WORKDIR /srv/ftp
ENV WHARF_CONFIG=/etc/wharf/wharf.toml \
    WHARF_LOG_FORMAT=json \
    WHARF_ACTIVE_MODE=false \
    WHARF_CREATE_MISSING=true

HEALTHCHECK --interval=30s --timeout=6s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/wharf", "healthcheck"]

# SIGTERM shuts down gracefully.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wharf"]
