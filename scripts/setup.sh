#!/usr/bin/env bash
# Set up nullspace on a fresh Debian/Ubuntu machine (as root): system packages, the project's
# virtual environment (.venv) and the code-interpreter template. Safe to run again: each step
# is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# When a step fails, say what on this host is missing and how to fix it.
on_failure() {
  if [ -x .venv/bin/nullspace ]; then
    echo "setup.sh failed; checking the host (nullspace doctor):" >&2
    .venv/bin/nullspace doctor --no-server >&2 || true
  fi
}
trap on_failure ERR

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (the server creates cgroups, mounts and per-sandbox users)" >&2
  exit 1
fi

need=()
for pkg in bubblewrap mmdebstrap libseccomp2 ca-certificates python3-venv iproute2; do  # iproute2: the egress tests' network namespaces
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
# npm fetches JavaScript packages on the trusted side (templates' npm steps, install_packages)
command -v npm >/dev/null 2>&1 || need+=(npm)
# the web console's tests drive Debian's headless chromium (Playwright never downloads a browser)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.nullspace-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing nullspace and its test tools into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e '.[all]' \
    pytest anyio ruff jupyter_client ipykernel matplotlib pandas plotly jupyter_kernel_gateway websocket-client \
    pexpect==4.9.0 playwright==1.65.3 mypy==2.4.1
  touch "$stamp"
fi
# The official E2B SDKs, at the versions tests/e2b is tested with (the E2B door, docs/e2b.md)
e2b_pins="e2b==2.63.0 e2b-code-interpreter==2.11.5"
e2b_stamp=".venv/.e2b-sdk-$(echo "$e2b_pins" | tr ' =' '_-')"
if [ ! -f "$e2b_stamp" ]; then
  echo "==> installing the E2B SDKs for the tests ($e2b_pins)"
  # shellcheck disable=SC2086
  .venv/bin/pip install -q --disable-pip-version-check $e2b_pins
  rm -f .venv/.e2b-sdk-*
  touch "$e2b_stamp"
fi
# schemathesis drives the property run over the OpenAPI document (tests/integration/test_contract.py);
# pinned (with its hypothesis) so a new release cannot change what the run generates or checks
st_pins="schemathesis==4.32.5 hypothesis==6.170.27"
st_stamp=".venv/.schemathesis-$(echo "$st_pins" | tr ' =' '_-')"
if [ ! -f "$st_stamp" ]; then
  echo "==> installing schemathesis for the contract test ($st_pins)"
  # shellcheck disable=SC2086
  .venv/bin/pip install -q --disable-pip-version-check $st_pins
  rm -f .venv/.schemathesis-*
  touch "$st_stamp"
fi
# ...and the JavaScript one (tests/e2b/node: exact versions in its package-lock.json)
if [ ! -d tests/e2b/node/node_modules/@e2b/code-interpreter ] || [ tests/e2b/node/package-lock.json -nt tests/e2b/node/node_modules ]; then
  echo "==> installing @e2b/code-interpreter for the tests (tests/e2b/node)"
  (cd tests/e2b/node && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  touch tests/e2b/node/node_modules
fi

# Swap for paused sandboxes (docs/pause.md): pause pushes a sandbox's memory out to swap. Only
# made when the host has none; NULLSPACE_SWAP_MB=0 skips it. Running sandboxes never swap
# (their cgroup's RAM + swap limit equals their memory limit).
swap_mb=${NULLSPACE_SWAP_MB:-4096}
if [ "$swap_mb" != 0 ] && [ "$(tail -n +2 /proc/swaps | wc -l)" = 0 ]; then
  swapfile=/var/lib/nullspace/swap
  mkdir -p /var/lib/nullspace
  if [ ! -f "$swapfile" ]; then
    echo "==> swap file $swapfile (${swap_mb} MiB) for paused sandboxes"
    (fallocate -l "${swap_mb}M" "$swapfile" || dd if=/dev/zero of="$swapfile" bs=1M count="$swap_mb" status=none) \
      && chmod 600 "$swapfile" && mkswap -q "$swapfile" >/dev/null
  fi
  swapon "$swapfile" 2>/dev/null || echo "warning: swapon $swapfile failed: paused sandboxes keep their memory in RAM" >&2
fi

# `nullspace` on PATH (sudo's secure_path has /usr/local/bin), unless another install owns it
link=/usr/local/bin/nullspace
if [ ! -e "$link" ] || { [ -L "$link" ] && [ ! -e "$(readlink -f "$link")" ]; }; then
  ln -sfn "$PWD/.venv/bin/nullspace" "$link"
fi

echo "==> template code-interpreter"
.venv/bin/nullspace template build code-interpreter
.venv/bin/nullspace template prune   # builds an upgrade replaced (none in use is touched)
