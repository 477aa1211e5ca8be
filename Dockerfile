# Ferry as a container image: a release build, then a slim runtime with the one binary.
# Build: docker build -t ferry .   Run: see compose.yaml (Ferry with 512 MiB, PostgreSQL, MinIO).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin ferry

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/ferry ferry \
    && mkdir -p /var/lib/ferry && chown ferry /var/lib/ferry
COPY --from=build /src/target/release/ferry /usr/local/bin/ferry
USER ferry
WORKDIR /var/lib/ferry
EXPOSE 8080
ENTRYPOINT ["ferry"]
CMD ["serve", "--config", "/etc/ferry/ferry.toml"]
