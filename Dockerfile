# fxd container image: built and unit-tested on Debian 12, run on bookworm-slim
# as an unprivileged user with its data in a volume.
#
#   docker build -t fxd .                  (podman: podman build --format docker -t fxd .)
#   docker run -d --name fxd -p 127.0.0.1:7070:7070 -p 127.0.0.1:7071:7071/udp \
#              -v fxd-data:/var/lib/fxd fxd
#   docker stop --time 35 fxd              SIGTERM: fxd drains (up to 30 s) and exits 0
#
# The admin listener (/metrics, /healthz, /readyz, /status) stays on the
# container's loopback unless asked for: add --set admin.bind=0.0.0.0 and
# -p 127.0.0.1:9470:9470 (9470 is left out of EXPOSE on purpose).
#
# scripts/container-test.sh builds, runs and checks all of that with podman.

# --- build: compile, run the unit tests, make the Debian package -------------
FROM debian:bookworm AS build
ARG JOBS=2
# setup.sh's list is the build's: compiler, CMake, Boost, spdlog, SQLite, libsodium, OpenSSL, CLI11, ...
COPY scripts/setup.sh /src/scripts/setup.sh
RUN /src/scripts/setup.sh \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpkg-dev file >/dev/null \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
WORKDIR /build
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
 && cmake --build /build -j "${JOBS}" \
 && ctest --test-dir /build -L unit --output-on-failure -j "${JOBS}" \
 && cpack -G DEB \
 && mv fxd_*.deb /fxd.deb

# --- runtime: the package and the libraries it depends on, nothing else -------
FROM debian:bookworm-slim
COPY --from=build /fxd.deb /tmp/fxd.deb
# apt resolves the package's Depends (dpkg-shlibdeps), which makes them the runtime libraries.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /tmp/fxd.deb >/dev/null \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/fxd.deb \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/fxd --no-create-home --shell /usr/sbin/nologin fxd \
 && install -d -o fxd -g fxd -m 0700 /var/lib/fxd
COPY config/fxd.container.json /etc/fxd/fxd.json
COPY config/fxd.container-tls.json /etc/fxd/fxd-tls.json
USER fxd
VOLUME /var/lib/fxd
EXPOSE 7070/tcp 7071/udp 7443/tcp
# fxd is PID 1: it handles SIGTERM/SIGINT itself (drain, then exit 0) and starts no children.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 CMD ["/usr/bin/fxc", "ping"]
ENTRYPOINT ["/usr/bin/fxd"]
CMD ["--config", "/etc/fxd/fxd.json"]
