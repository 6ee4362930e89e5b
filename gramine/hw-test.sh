#!/usr/bin/env bash
# The gated hardware test, on an SGX machine with Gramine 1.6+, a running AESM (DCAP, with a
# PCCS configured in /etc/sgx_default_qcnl.conf) and cargo:
#
#   PCCS_URL=https://localhost:8081 gramine/hw-test.sh
#
# 1. builds and signs the LAS enclave (gramine/build.sh) and starts it with gramine-sgx;
# 2. builds the application test enclave (crates/las-platform/tests/sgx_gramine.rs, an
#    ignored test) from gramine/app-test.manifest.template;
# 3. writes a policy that trusts exactly this LAS build and this application enclave;
# 4. runs the application enclave: it makes a REPORT for the LAS through /dev/attestation,
#    gets it quoted by the LAS, fetches the LAS's sgx-dcap identity evidence, fetches DCAP
#    collateral from the PCCS and verifies the quote with las-verifier: it must be accepted.
# Then `las verify` checks the same quote from outside the enclave.
#
# Environment: PCCS_URL (required), PCCS_CA (CA file of a self-signed PCCS), TOLERATE
# (extra tolerate names for this platform, e.g. "software-hardening-needed"), IGNORE
# (advisory IDs to ignore), PORT (default 18799), DEBUG (true: debug enclaves).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PCCS_URL:?set PCCS_URL to the PCCS of this machine}"
PORT=${PORT:-18799}
DEBUG=${DEBUG:-false}
WORK=$PWD/target/gramine-hw-test
ARCH_LIBDIR=/lib/$(gcc -dumpmachine)
mkdir -p "$WORK/las" "$WORK/app" "$WORK/input"

# 1. The LAS.
LAS_DIR="$WORK/las" LISTEN="127.0.0.1:$PORT" DEBUG="$DEBUG" gramine/build.sh
las_mrenclave=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["mr_enclave"])' "$WORK/las/measurement.json")
(cd "$WORK/las" && exec gramine-sgx las) > "$WORK/las.log" 2>&1 &
las_pid=$!
trap 'kill "$las_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$las_pid" 2>/dev/null || { cat "$WORK/las.log"; echo "the LAS enclave exited" >&2; exit 1; }
  sleep 1
done
curl -fsS "http://127.0.0.1:$PORT/v1/platform"; echo

# 2. The application test enclave.
bin=$(cargo test --release -p las-platform --features sgx --test sgx_gramine --no-run --message-format=json \
  | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "sgx_gramine" and m.get("executable"):
        print(m["executable"])')
install -m 0755 "$bin" "$WORK/app/sgx_gramine"
gramine-manifest -Dtest_dir="$WORK/app" -Dinput_dir="$WORK/input" -Darch_libdir="$ARCH_LIBDIR" -Ddebug="$DEBUG" \
  gramine/app-test.manifest.template "$WORK/app/sgx_gramine.manifest"
gramine-sgx-sign --manifest "$WORK/app/sgx_gramine.manifest" --output "$WORK/app/sgx_gramine.manifest.sgx"
gramine-sgx-sigstruct-view --output-format json "$WORK/app/sgx_gramine.sig" > "$WORK/app/measurement.json"
app_mrenclave=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["mr_enclave"])' "$WORK/app/measurement.json")

# 3. The policy.
tolerate=${TOLERATE:-}
[ "$DEBUG" = true ] && tolerate="$tolerate debug-mode"
cat > "$WORK/input/policy.yaml" <<YAML
version: "0.3"
security:
  attestation:
    tolerate: [$(echo $tolerate | sed 's/ /, /g')]
    ignore_advisories: [$(echo ${IGNORE:-} | sed 's/ /, /g')]
    trusted_las:
      - mrenclave: ["$las_mrenclave"]
services:
  - name: app
    attestation:
      mrenclave: ["$app_mrenclave"]
YAML

# 4. Attest, inside the application enclave.
(cd "$WORK/app" && LAS_TEST_ADDR="127.0.0.1:$PORT" LAS_TEST_POLICY="$WORK/input/policy.yaml" \
  LAS_TEST_PCCS_URL="$PCCS_URL" SSL_CERT_FILE="${PCCS_CA:-/etc/ssl/certs/ca-certificates.crt}" \
  LAS_TEST_OUT="$WORK/input" gramine-sgx sgx_gramine)

# The same quote, verified by the CLI from outside.
cargo run --release -q -p las -- verify --policy "$WORK/input/policy.yaml" --quote "$WORK/input/quote.cose" \
  --expect-report-data "$(cat "$WORK/input/report_data.hex")" --las "127.0.0.1:$PORT" \
  --pccs-url "$PCCS_URL" ${PCCS_CA:+--pccs-ca "$PCCS_CA"}
echo "hardware test passed"
