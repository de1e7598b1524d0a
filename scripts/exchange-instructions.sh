#!/usr/bin/env bash
# Counts the instructions the server spends per code exchange outside its two RSA signatures,
# with valgrind's callgrind: a figure that does not drift with the machine's speed, for comparing
# two builds of the token endpoint when the timed benchmark's noise (a fifth, on the VMs we use)
# is larger than the change. Kernel time (loopback TCP, WAL writes) is not counted; use the timed
# benchmark for that.
#
#   scripts/exchange-instructions.sh [SERVER_BINARY]     (default: the release build)
#
# How: the load harness runs as usual (`--quick --perf --seconds 0.5`) against the server started
# under callgrind, and a `perf` shim on PATH turns each phase's `perf record -p PID` into "zero
# the counters" at its start and "dump them" at its end. Under valgrind, aws-lc takes its AVX2
# RSA code path (valgrind has no AVX-512), so the signature figure is not the machine's.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is needed (Debian package valgrind)" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/citizen-id/target}"

harness=$(cargo bench -p citizen-id --bench load --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -n1)
server="${1:-$CARGO_TARGET_DIR/release/citizen-id}"
[ -x "$harness" ] && [ -x "$server" ] || { echo "no harness ($harness) or server ($server)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/out"
cat > "$work/bin/perf" <<'EOF'
#!/usr/bin/env bash
[ "${1:-}" = record ] || { echo "perf shim"; exit 0; }
pid=""; out=""
while [ $# -gt 0 ]; do case "$1" in -p) pid=$2; shift;; -o) out=$2; shift;; esac; shift; done
callgrind_control -z "$pid" >/dev/null 2>&1
trap 'callgrind_control -d "$(basename "$out" .data)" "$pid" >/dev/null 2>&1; exit 0' INT
while true; do sleep 0.05; done
EOF
cat > "$work/bin/server" <<EOF
#!/usr/bin/env bash
cd "$work/out" && exec valgrind --tool=callgrind --callgrind-out-file="$work/out/callgrind.out.%p" "$server" "\$@"
EOF
chmod +x "$work/bin/perf" "$work/bin/server"

echo "running the load harness against $server under callgrind (about two minutes)..." >&2
PATH="$work/bin:$PATH" CITIZEN_ID_BIN="$work/bin/server" "$harness" --bench --quick --perf --seconds 0.5 > "$work/harness.log" 2>&1 \
  || { cat "$work/harness.log" >&2; exit 1; }

# Each dump's totals and the calls to (and inclusive cost of) KeyRing::sign, two per exchange.
python3 - "$work"/out/callgrind.out.* <<'EOF'
import re, sys
for path in sorted(sys.argv[1:]):
    names, callee, pending = {}, None, False
    calls = signing = total = 0
    phase = None
    for line in open(path, errors="replace"):
        if line.startswith("desc: Trigger: dump "):
            phase = line[len("desc: Trigger: dump "):].strip()
        m = re.match(r"(c?fn)=\((\d+)\)(?: (.*))?", line)
        if m:
            kind, ident, name = m.groups()
            if name:
                names[ident] = name.strip()
            callee = names.get(ident, "") if kind == "cfn" else None
            continue
        if line.startswith("calls=") and callee and callee.startswith("citizen_id::oidc::keys::KeyRing::sign"):
            calls += int(line.split("=")[1].split()[0])
            pending = True
            continue
        if pending:
            signing += int(line.split()[1])
            pending = False
        if line.startswith(("totals:", "summary:")):
            total = int(line.split()[1])
    if phase and phase.startswith("perf-exchange") and calls:
        exchanges = calls / 2
        print(f"{phase:28} {exchanges:4.0f} exchanges: {(total - signing) / exchanges:>9,.0f} instructions each outside "
              f"the signatures ({signing / calls:,.0f} per signature)")
EOF
