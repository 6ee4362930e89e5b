#!/usr/bin/env bash
# Builds the hardware-mode LAS for Gramine-SGX: the `lasd` binary with the SGX backend
# (reproducibly: scripts/build-lasd --features sgx --link dynamic), the
# manifest (gramine-manifest), the signed enclave (gramine-sgx-sign), and prints the
# enclave's MRENCLAVE/MRSIGNER as a `trusted_las` entry for verifiers' policies.
#
# Needs: cargo, Gramine 1.6+ (gramine-manifest, gramine-sgx-sign, gramine-sgx-sigstruct-view),
# python3. No SGX CPU is needed to build and sign; one is needed to run (`gramine-sgx las`).
#
# Environment:
#   LAS_DIR      where the binary lives at run time too (default: target/gramine, absolute);
#                it is part of the manifest, so the same LAS_DIR gives the same MRENCLAVE
#   SIGNING_KEY  RSA-3072 enclave signing key (default ~/.config/gramine/enclave-key.pem,
#                created when missing). Its hash is the MRSIGNER: keep it safe.
#   LISTEN       listen address (default [::]:18766: IPv4 and IPv6, dual stack included)
#   DEBUG        true: a DEBUG enclave (verifiers reject it unless they tolerate debug-mode)
#   SKIP_CARGO   1: use an existing $LAS_DIR/lasd (e.g. built in an earlier image stage)
#
# Usage: gramine/build.sh      then: cd "$LAS_DIR" && gramine-sgx las
set -euo pipefail
cd "$(dirname "$0")/.."
LAS_DIR=${LAS_DIR:-$PWD/target/gramine}
SIGNING_KEY=${SIGNING_KEY:-$HOME/.config/gramine/enclave-key.pem}
LISTEN=${LISTEN:-[::]:18766}
DEBUG=${DEBUG:-false}
ARCH_LIBDIR=${ARCH_LIBDIR:-/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)}

for tool in gramine-manifest gramine-sgx-sign gramine-sgx-sigstruct-view; do
  command -v "$tool" >/dev/null || { echo "gramine/build.sh: $tool not found: install Gramine 1.6 or later" >&2; exit 2; }
done

mkdir -p "$LAS_DIR"
if [ "${SKIP_CARGO:-0}" != 1 ]; then
  # Dynamic: Gramine supplies the glibc inside the enclave.
  scripts/build-lasd --features sgx --link dynamic "$LAS_DIR" >&2
fi
[ -f "$SIGNING_KEY" ] || gramine-sgx-gen-private-key "$SIGNING_KEY"

gramine-manifest \
  -Dlas_dir="$LAS_DIR" -Darch_libdir="$ARCH_LIBDIR" -Dlisten="$LISTEN" \
  -Dlog_level=error -Ddebug="$DEBUG" \
  gramine/las.manifest.template "$LAS_DIR/las.manifest"
gramine-sgx-sign --manifest "$LAS_DIR/las.manifest" --output "$LAS_DIR/las.manifest.sgx" --key "$SIGNING_KEY"
gramine-sgx-sigstruct-view --output-format json "$LAS_DIR/las.sig" > "$LAS_DIR/measurement.json"

python3 - "$LAS_DIR/measurement.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print("LAS enclave built. Add it to verifiers' policies:")
print("security:\n  attestation:\n    trusted_las:")
print(f'      - mrenclave: ["{m["mr_enclave"]}"]')
print("      # or every build signed with this key:")
print(f'      # - {{mrsigner: "{m.get("mr_signer")}", isvprodid: {m.get("isv_prod_id", 1)}, isvsvn_min: {m.get("isv_svn", 1)}}}')
PY
