# syntax=docker/dockerfile:1
#
# stampede in a container, for running segments of a test on Kubernetes
# (docs/distributed.md, deploy/k8s/).
#
#   docker build -t stampede:0.1.0 .
#   docker run --rm -v "$PWD/scripts:/work:ro" stampede:0.1.0 check /work/health.rhai

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the registry and the build directory between builds (BuildKit);
# the binary is copied out of the cached target/ before the mount goes away.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/stampede /usr/local/bin/stampede

FROM debian:bookworm-slim
# ca-certificates: the system roots for https targets. /bin/sh (dash) is in the base image;
# the Kubernetes Job uses it for the segment arithmetic.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 stampede \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /work --shell /usr/sbin/nologin stampede \
    && mkdir -p /work \
    && chown 10001:10001 /work
COPY --from=build /usr/local/bin/stampede /usr/local/bin/stampede
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["stampede"]
CMD ["--help"]
