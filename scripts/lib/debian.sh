# Helpers the deployment checks share; source it (bash). Needs root.
#   fxd_need_packages PKG...     installs the Debian packages not yet installed
#   fxd_debian_archive           prints the Debian archive apt uses (not -security)
#   fxd_debian_security_archive  prints the security archive (or one derived from the above)
#   fxd_bootstrap_root DIR LOG [DEBOOTSTRAP-OPTION...]
#                                makes a minimal Debian 12 root in DIR from that archive

fxd_need_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Every archive URL in apt's sources, one-line (deb URL ...) and deb822 (URIs: URL ...) alike.
_fxd_apt_uris() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }
       $1 == "URIs:" { for (i = 2; i <= NF; i++) print $i }' "${files[@]}"
}

fxd_debian_archive() {
  local uri
  uri=$(_fxd_apt_uris | grep -E '^https?://.+/debian/?$' | head -n 1 || true)
  [ -n "$uri" ] || { echo "no Debian archive found in apt's sources" >&2; return 1; }
  echo "${uri%/}"
}

fxd_debian_security_archive() {
  local uri
  uri=$(_fxd_apt_uris | grep -E '^https?://.+/debian-security/?$' | head -n 1 || true)
  if [ -n "$uri" ]; then echo "${uri%/}"; else echo "$(fxd_debian_archive)-security"; fi
}

fxd_bootstrap_root() {
  local dir=$1 log=$2 archive
  shift 2
  archive=$(fxd_debian_archive) || return 1
  rm -rf "$dir"
  echo "debootstrap: Debian 12 from $archive into $dir (a few minutes)" >&2
  if ! timeout 900 debootstrap --variant=minbase "$@" bookworm "$dir" "$archive" >"$log" 2>&1; then
    echo "debootstrap failed; its log is $log" >&2
    return 1
  fi
  # What apt inside will use: the same archives the host uses.
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$archive" "$archive" "$(fxd_debian_security_archive)" > "$dir/etc/apt/sources.list"
}
