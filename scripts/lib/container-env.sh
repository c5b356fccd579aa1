# Makes podman build and run fxd's image on a Debian 12 host that has no Docker
# engine and reaches no container registry. Source it (bash, as root):
#
#   source scripts/lib/container-env.sh && podman build --pull=never --network host -t fxd .
#
# It installs podman and its helpers from Debian, writes a containers.conf for
# this host (exported as CONTAINERS_CONF), and makes the base images the
# Dockerfile names (debian:bookworm, debian:bookworm-slim) locally with
# debootstrap. Run again, it only re-exports the settings.
#   FXD_CONTAINER_STATE   where the config and logs live (default /var/tmp/fxd-container)

# shellcheck source=scripts/lib/debian.sh
source "$(dirname "${BASH_SOURCE[0]}")/debian.sh"

# A hard limit of the host as a number ("unlimited" becomes the given cap).
_fxd_hard_limit() {
  local flag=$1 cap=$2 value
  value=$(ulimit -H "$flag")
  if [ "$value" = unlimited ] || [ "$value" -gt "$cap" ]; then echo "$cap"; else echo "$value"; fi
}

_fxd_write_containers_conf() {
  local conf=$1 nofile nproc
  # podman's defaults for open files and processes can be above the host's
  # hard limits, and without CAP_SYS_RESOURCE runc then cannot start anything.
  nofile=$(_fxd_hard_limit -n 1048576)
  nproc=$(_fxd_hard_limit -u 32768)
  # runc and cgroupfs: hosts whose PID 1 is not systemd, or with cgroup v1
  # controllers mounted beside v2, are where crun and the systemd manager fail.
  cat > "$conf" <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
}

# One minbase root imported once, tagged under every name the Dockerfile may use.
_fxd_make_base_image() {
  local state=$1 root=$1/rootfs name
  fxd_bootstrap_root "$root" "$state/debootstrap.log" || return 1
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - localhost/debian:bookworm >/dev/null || return 1
  for name in localhost/debian:bookworm-slim docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim; do
    podman tag localhost/debian:bookworm "$name" || return 1
  done
  rm -rf "$root"
}

fxd_container_env() {
  local state=${FXD_CONTAINER_STATE:-/var/tmp/fxd-container}
  fxd_need_packages podman buildah runc conmon catatonit fuse-overlayfs slirp4netns uidmap \
    netavark aardvark-dns containernetworking-plugins debootstrap || return 1
  mkdir -p "$state"
  _fxd_write_containers_conf "$state/containers.conf"
  export CONTAINERS_CONF=$state/containers.conf
  if ! podman image exists localhost/debian:bookworm 2>/dev/null; then
    _fxd_make_base_image "$state" || return 1
  fi
  echo "podman ready (CONTAINERS_CONF=$CONTAINERS_CONF; base image localhost/debian:bookworm)" >&2
}

fxd_container_env
