#!/usr/bin/env bash
# Builds (or reuses) an OpenSSL 3.0 FIPS provider for Node's bundled OpenSSL 3.0.
#
# Node 20 ships OpenSSL 3.0 without a FIPS module, but loads one built from OpenSSL 3.0 sources
# (https://nodejs.org/api/crypto.html#fips-mode). The sources come from Debian's archive for the
# suites this machine already uses (a deb-src line is added), the upstream tarball is built with
# `./Configure enable-fips`, and only providers/fips.so and providers/fipsmodule.cnf are kept.
#
# A provider built this way is NOT a FIPS 140-validated module: it proves that the BFF runs with
# only FIPS-approved algorithms, nothing more. A deployment must use the validated module of its
# platform (see README "FIPS mode").
#
# Output (stdout, last line): the cache directory holding fips.so, fipsmodule.cnf and
# openssl-fips.cnf (a config for `node --openssl-config=...` with OPENSSL_MODULES=<that dir>).
# The cache lives outside the repository so later runs and CI on this machine reuse it:
#   ${FAPI_BFF_FIPS_CACHE:-/var/cache/fapi-bff}/fips-<openssl version>/
set -euo pipefail

CACHE_ROOT="${FAPI_BFF_FIPS_CACHE:-/var/cache/fapi-bff}"
mkdir -p "$CACHE_ROOT"
log() { printf 'fips-provider: %s\n' "$*" >&2; }

# One build at a time on this machine (CI and a developer may run it together).
exec 9>"$CACHE_ROOT/.lock"
flock 9

find_cached() {
  local d
  for d in "$CACHE_ROOT"/fips-*/; do
    [ -f "$d/fips.so" ] && [ -f "$d/fipsmodule.cnf" ] && [ -f "$d/openssl-fips.cnf" ] && {
      printf '%s\n' "${d%/}"
      return 0
    }
  done
  return 1
}

if [ "${FAPI_BFF_FIPS_REBUILD:-}" != "1" ] && cached="$(find_cached)"; then
  log "reusing $cached"
  printf '%s\n' "$cached"
  exit 0
fi

node_openssl="$(node -p process.versions.openssl)"
log "node's OpenSSL is $node_openssl; fetching the closest 3.0 sources Debian serves"
case "$node_openssl" in
  3.0.*) ;;
  *) log "warning: this script targets Node's OpenSSL 3.0 line; found $node_openssl" ;;
esac

# deb-src for the same suites as the configured deb lines (deb822 sources of this machine).
src_list=/etc/apt/sources.list.d/fapi-bff-deb-src.sources
if [ ! -f "$src_list" ]; then
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  cat >"$src_list" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: ${codename} ${codename}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: ${codename}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  log "added $src_list"
fi
DEBIAN_FRONTEND=noninteractive apt-get update -qq \
  -o Dir::Etc::sourcelist="$src_list" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >&2

work="$(mktemp -d "$CACHE_ROOT/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work"
# Try the source versions the archive lists, closest to Node's OpenSSL patch level first (a mirror
# may list a version it no longer serves).
node_patch="${node_openssl##*.}"
node_patch="${node_patch%%[!0-9]*}"
candidates="$(apt-cache showsrc openssl | sed -n 's/^Version: //p' | sort -u |
  awk -v p="${node_patch:-0}" '{ split($0, a, /[.~-]/); d = a[3] - p; if (d < 0) d = -d; print d, $0 }' |
  sort -n | cut -d' ' -f2)"
orig=""
for v in $candidates; do
  case "$v" in 3.0.*) ;; *) continue ;; esac
  if apt-get source --download-only -qq "openssl=$v" >&2 2>/dev/null; then
    orig="$(ls openssl_*.orig.tar.* 2>/dev/null | head -n 1)"
    [ -n "$orig" ] && break
  fi
  log "openssl $v not downloadable, trying the next version"
  rm -f openssl_*
done
[ -n "$orig" ] || {
  log "no OpenSSL 3.0 source could be downloaded"
  exit 1
}
version="$(printf '%s' "$orig" | sed -E 's/^openssl_([0-9][0-9.]*[0-9a-z]*)\.orig\.tar\..*$/\1/')"
log "building the FIPS provider from OpenSSL $version (Debian source $orig)"
mkdir src
tar -xf "$orig" -C src --strip-components=1
cd src
# no-shared: the openssl app used by `fipsinstall` needs no library path; fips.so is a module and is
# built either way. Only the provider and the app that computes its integrity MAC are built.
./Configure enable-fips no-shared no-tests >build.log 2>&1 || {
  tail -n 40 build.log >&2
  exit 1
}
jobs="$(nproc 2>/dev/null || echo 2)"
make -j"$jobs" build_generated >>build.log 2>&1 &&
  make -j"$jobs" providers/fips.so apps/openssl >>build.log 2>&1 || {
  tail -n 60 build.log >&2
  exit 1
}
# fipsmodule.cnf records the module's HMAC and self-test status (what `make install_fips` writes).
./apps/openssl fipsinstall -module providers/fips.so -out providers/fipsmodule.cnf \
  -provider_name fips -mac_name HMAC -section_name fips_sect >>build.log 2>&1 || {
  tail -n 20 build.log >&2
  exit 1
}

dest="$CACHE_ROOT/fips-$version"
mkdir -p "$dest.tmp"
cp providers/fips.so providers/fipsmodule.cnf "$dest.tmp/"
cat >"$dest.tmp/openssl-fips.cnf" <<EOF
# OpenSSL config for Node: only the FIPS provider (and base, for encoders) with fips=yes.
# https://docs.openssl.org/3.0/man7/fips_module/
# Node reads the nodejs_conf section (https://nodejs.org/api/cli.html#--openssl-shared-config);
# openssl_conf is for the openssl app and --openssl-shared-config.
config_diagnostics = 1
nodejs_conf = openssl_init
openssl_conf = openssl_init

.include $dest/fipsmodule.cnf

[openssl_init]
providers = provider_sect
alg_section = algorithm_sect

[provider_sect]
fips = fips_sect
base = base_sect

[base_sect]
activate = 1

[algorithm_sect]
default_properties = fips=yes
EOF
printf '%s\n' "$version" >"$dest.tmp/VERSION"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
log "provider ready in $dest"
printf '%s\n' "$dest"
