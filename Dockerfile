# syntax=docker/dockerfile:1

# Build: a release binary from the locked dependencies. protox compiles proto/ in
# build.rs, so no system protoc is needed; migrations/ is embedded at compile time.
FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/pulsebus /usr/local/bin/pulsebus

# Run: the binary alone, as a non-root user. Give it DATABASE_URL (without it pulsebus
# would look for local PostgreSQL binaries, which this image does not have).
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/pulsebus --create-home pulsebus
COPY --from=builder /usr/local/bin/pulsebus /usr/local/bin/pulsebus
USER pulsebus
WORKDIR /var/lib/pulsebus
EXPOSE 50051
ENTRYPOINT ["pulsebus"]
CMD ["serve", "--listen", "0.0.0.0:50051"]
