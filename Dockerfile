# syntax=docker/dockerfile:1
#
# baton container image.
#   docker build -t baton .
#   docker run --rm -p 8080:8080 -e DATABASE_URL=... -e TWILIO_ACCOUNT_SID=... baton
# The default command is `baton serve` (it runs the database migrations itself).

# ---- build stage ---------------------------------------------------------------
FROM rust:1-bookworm AS builder
WORKDIR /src
# Never try to reach a database at compile time (sqlx macros).
ENV SQLX_OFFLINE=true

# 1) Dependencies only: build against a placeholder src/ so this (slow) layer is
#    reused until the manifests change. The workspace's other members (the Twilio
#    stand-in and the load tools) must be present for cargo to read the workspace.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN mkdir -p src \
 && echo 'fn main() {}' > src/main.rs \
 && : > src/lib.rs \
 && cargo build --release --locked -p baton --bin baton \
 && rm -rf src

# 2) The real crate. migrations/ has to be present before this build:
#    sqlx::migrate!("./migrations") embeds the migrations at compile time.
COPY migrations ./migrations
COPY src ./src
# COPY keeps the files' original mtimes, which can be older than the placeholder
# build; touch them so cargo really rebuilds the crate.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked -p baton --bin baton \
 && install -D -m 0755 target/release/baton /out/baton

# ---- runtime stage -------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 baton \
 && useradd --system --uid 10001 --gid baton --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin baton

COPY --from=builder /out/baton /usr/local/bin/baton

# Numeric so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
ENV BATON_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["baton"]
CMD ["serve"]
