# syntax=docker/dockerfile:1
#
# Two images from one build: the web app (`--target webapp`) and the OCI Function (`--target func`).
#
#   docker buildx build --platform=linux/amd64 --target webapp -t <key>.ocir.io/<ns>/ocivision/webapp:<tag> --push .
#   docker buildx build --platform=linux/amd64 --target func   -t <key>.ocir.io/<ns>/ocivision/func:<tag>   --push .
#
# `--platform=linux/amd64` matters: the function application uses the GENERIC_X86 shape and the
# container instance an x86 (E4) shape, so an arm64 image built on an Apple-silicon laptop fails
# there with "exec format error". On an arm64 host buildx runs this build under QEMU (slower, same
# result). The exact commands, with the registry host for your region, are printed by
# `terraform output build_commands`.
#
# The binaries are fully static musl executables (static-pie), so the final images are `scratch`:
# no libc, no shell, no package manager, nothing to patch but our own two files. We chose scratch
# over gcr.io/distroless/static-debian12:nonroot because the only things distroless would add are
# CA certificates, tzdata and /etc/passwd: rustls uses the webpki root certificates compiled into
# the binary (no CA bundle is read at run time), we format dates ourselves in UTC, and we write the
# two passwd/group lines the Fn contract asks for below. Templates are embedded with include_str!,
# so the images need no other files.

# ---- build: one Rust toolchain image, pinned by tag (Rust 1.95.0 on Debian 12 "bookworm") ----
FROM rust:1.95.0-bookworm AS build

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# musl-tools provides musl-gcc, which ring's C and assembly parts are compiled with for the
# x86_64-unknown-linux-musl target (rustls with ring builds cleanly on musl).
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools=1.2.3-1 \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl

WORKDIR /src
COPY . .

# Release build WITHOUT the `local` feature (no emulator, no detector, no local mode, no
# development key in the images); only the two
# deployed binaries. Symbols are stripped through the environment so Cargo.toml stays untouched.
# Cache mounts keep the registry and target/ between builds (BuildKit, which buildx always uses).
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --target x86_64-unknown-linux-musl --bin webapp --bin func \
    && install -D -m 0555 target/x86_64-unknown-linux-musl/release/webapp /rootfs/webapp/webapp \
    && install -D -m 0555 target/x86_64-unknown-linux-musl/release/func /rootfs/func/func

# The two root filesystems. OCI Functions runs the container as `fn` (uid/gid 1000) on a read-only
# root with only /tmp writable (a tmpfs; the Fn socket directory /tmp/iofs is bind-mounted by the
# agent, so the image must not create it). /tmp exists, sticky and world-writable, so the images
# also behave under `docker run --read-only --tmpfs /tmp`.
RUN for app in webapp func; do \
        install -d -m 0755 "/rootfs/${app}/etc" \
        && install -d -m 1777 "/rootfs/${app}/tmp" \
        && printf 'root:x:0:0:root:/:/sbin/nologin\nfn:x:1000:1000:fn:/tmp:/sbin/nologin\n' > "/rootfs/${app}/etc/passwd" \
        && printf 'root:x:0:\nfn:x:1000:\n' > "/rootfs/${app}/etc/group" \
        && chmod 0444 "/rootfs/${app}/etc/passwd" "/rootfs/${app}/etc/group"; \
    done

# ---- webapp: runs in an OCI Container Instance behind the load balancer ----
FROM scratch AS webapp
COPY --from=build /rootfs/webapp/ /
# No CA bundle: rustls uses the compiled-in webpki roots.
# OCIVISION_MODE=cloud: a missing configuration is an error (exit 2), never a silent other mode.
ENV OCIVISION_MODE=cloud \
    BIND=0.0.0.0 \
    PORT=5000 \
    LOG_LEVEL=info
EXPOSE 5000
USER 1000:1000
ENTRYPOINT ["/webapp"]

# ---- func: the OCI Function (Fn contract over the unix socket named by FN_LISTENER) ----
FROM scratch AS func
COPY --from=build /rootfs/func/ /
# No CA bundle: rustls uses the compiled-in webpki roots. No port: Fn talks over /tmp/iofs/lsnr.sock.
ENV OCIVISION_MODE=cloud \
    LOG_LEVEL=info
USER 1000:1000
ENTRYPOINT ["/func"]
