# Edge Bridge as a container image: the single binary from `deno compile` on a small glibc base.
#
#   docker build -t edge-bridge .
#   docker run --rm -p 8080:8080 -e EDGE_BRIDGE_KAFKA_BROKERS=kafka:9092 edge-bridge
#
# Configuration: /etc/edge-bridge/config.yaml (deploy/container.yaml; mount your own over it), then
# EDGE_BRIDGE_* variables, then flags (docs/configuration.md). docker-compose.yml runs an HA pair.
# Give `docker stop` more than server.shutdownTimeoutMs (10 s) to drain: `docker stop -t 15`, or
# stop_grace_period in compose.

# Build stage: Deno 2.9.6 compiles main.ts and its whole module graph (npm packages, the console page and
# the SDK bundle) into one executable for this build's platform. scripts/compile.sh holds the permission
# flags baked into the binary and the reasons for them, so the image and `deno task compile` match.
FROM denoland/deno:2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock main.ts ./
COPY scripts/compile.sh scripts/ensure-deno.sh scripts/
COPY src/ src/
RUN COMPILE_OUTPUT=/out/edge-bridge bash scripts/compile.sh \
  && /out/edge-bridge version

# Runtime stage: Debian 12 slim. The binary links glibc (so not Alpine/musl). Slim rather than distroless
# because the HEALTHCHECK needs something that can make an HTTP request, and the binary cannot check its
# own /healthz: slim's bash opens a TCP socket itself (/dev/tcp), so no curl, no package install and no
# extra attack surface; distroless has no shell at all.
FROM debian:bookworm-slim
ARG UID=10001
# A dedicated unprivileged user; its data directory (the HA epoch) and the HA shared directory (file-lock
# mode) are volumes, created here so that fresh named volumes inherit the user's ownership.
RUN groupadd --system --gid "${UID}" edge-bridge \
  && useradd --system --uid "${UID}" --gid edge-bridge --home-dir /var/lib/edge-bridge \
    --shell /usr/sbin/nologin --no-create-home edge-bridge \
  && install -d -o edge-bridge -g edge-bridge -m 0750 /var/lib/edge-bridge /var/lib/edge-bridge-shared
COPY --from=build /out/edge-bridge /usr/local/bin/edge-bridge
COPY deploy/container.yaml /etc/edge-bridge/config.yaml
ENV EDGE_BRIDGE_CONFIG=/etc/edge-bridge/config.yaml
WORKDIR /var/lib/edge-bridge
VOLUME ["/var/lib/edge-bridge", "/var/lib/edge-bridge-shared"]
# 8080/tcp: WebSocket clients, /healthz, /readyz, /metrics. 7946/udp: HA heartbeats (heartbeat mode).
EXPOSE 8080/tcp 7946/udp
USER ${UID}:${UID}
# /healthz answers 200 while the process serves HTTP, whatever its HA role (/readyz is 503 on a backup,
# which is healthy). EDGE_BRIDGE_SERVER_PORT names the port when it is not 8080.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${EDGE_BRIDGE_SERVER_PORT:-8080} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/edge-bridge"]
CMD ["serve"]
