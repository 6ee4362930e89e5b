#!/bin/sh
# Lays out the files of the LAS image in OUT, for the final `FROM scratch` stage of both
# Dockerfiles: OUT/rootfs (root-owned: the static lasd and las-prepare-state, passwd, group, /var/lib) and
# OUT/state/las (the LAS user's state directory, mode 0700; the Dockerfiles copy it into
# /var/lib/ with COPY --chown, so that this script needs no root, and /var/lib stays root's).
# `lasd` is the measured daemon (the LAS pods run it); `las` is the operator CLI, which the chart's
# verification service (`las verifier serve`) and `helm test` hook (`las platform-ids`) run.
# Usage: docker/rootfs.sh OUT LASD_BINARY PREPARE_STATE_BINARY LAS_BINARY
set -eu
if [ $# -ne 4 ]; then
  echo "usage: $0 OUT LASD_BINARY PREPARE_STATE_BINARY LAS_BINARY" >&2
  exit 2
fi
out=$1 lasd=$2 prepare=$3 las=$4
mkdir -p "$out/rootfs/usr/local/bin" "$out/rootfs/etc" "$out/rootfs/var/lib" "$out/state/las"
cp "$lasd" "$out/rootfs/usr/local/bin/lasd"
cp "$prepare" "$out/rootfs/usr/local/bin/las-prepare-state"
cp "$las" "$out/rootfs/usr/local/bin/las"
chmod 0755 "$out/rootfs/usr/local/bin/lasd" "$out/rootfs/usr/local/bin/las-prepare-state" \
  "$out/rootfs/usr/local/bin/las"
# Names for the uids, so that `docker top` and friends show `las` instead of 10001.
printf 'root:x:0:0:root:/:/sbin/nologin\nlas:x:10001:10001:Local Attestation Service:/var/lib/las:/sbin/nologin\n' \
  > "$out/rootfs/etc/passwd"
printf 'root:x:0:\nlas:x:10001:\n' > "$out/rootfs/etc/group"
chmod 0644 "$out/rootfs/etc/passwd" "$out/rootfs/etc/group"
chmod 0755 "$out/rootfs/var" "$out/rootfs/var/lib"
chmod 0700 "$out/state/las"
