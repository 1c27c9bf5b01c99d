# syntax=docker/dockerfile:1
# pytune's container image: the static-ish release binary on a distroless runtime (glibc, CA roots,
# no shell, no package manager), running as the distroless nonroot user (65532).
#
#   docker build -t pytune:0.1.0 .
#   kind load docker-image pytune:0.1.0      # or push it to your registry
#
# The chart runs it with `serve` and its flags; `docker run --rm -i pytune:0.1.0 mutate -` works too.

ARG RUST_VERSION=1.89
FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# Only what the build reads (see .dockerignore): manifests, sources, the embedded policy and catalog, benches
# (Cargo.toml declares them, so cargo looks for their files).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY policy ./policy
COPY catalog ./catalog
COPY benches ./benches
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pytune \
    && install -D -m 0755 target/release/pytune /out/pytune

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="pytune" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that gives Python services production defaults" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/pytune /usr/local/bin/pytune
USER 65532:65532
# 8443: the HTTPS webhook (--listen); 8080: /livez, /readyz, /metrics (--admin-listen).
EXPOSE 8443 8080
ENTRYPOINT ["/usr/local/bin/pytune"]
CMD ["--help"]
