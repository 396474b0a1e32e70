#!/usr/bin/env bash
# Creates (once) and activates the project's virtual environment, outside the clone so a fresh
# checkout or CI run reuses it: its name carries a hash of requirements.lock, so a changed lock
# builds a new one and an unchanged lock costs nothing. Source it, or run it to only install.
#   KDPRUNE_VENV=/path   use that environment instead
#   scripts/env.sh --relock   rewrite requirements.lock from a fresh resolve of pyproject.toml
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${KDPRUNE_PYTHON:-python3}
lock_hash=$(cat "$repo/requirements.lock" | sha256sum | cut -c1-12)
venv=${KDPRUNE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kdprune/venv-$lock_hash}

if [[ "${1:-}" == "--relock" ]]; then
    tmp=$(mktemp -d)
    "$python" -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" install -q "$repo[test]"
    { sed -n '1,2p' "$repo/requirements.lock"; "$tmp/venv/bin/pip" freeze --exclude kdprune; } > "$repo/requirements.lock.new"
    mv "$repo/requirements.lock.new" "$repo/requirements.lock"
    rm -rf "$tmp"
    echo "requirements.lock rewritten"
    exit 0
fi

if [[ ! -f "$venv/.complete" ]]; then
    echo "kdprune: creating $venv (first time: ~1.5 min, 5.5 GB for the CUDA build of torch)" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
    # The machine's pip config names local wheel folders that may be absent: drop those warnings.
    "$venv/bin/pip" install -q -r "$repo/requirements.lock" 2> >(grep -v "is ignored: it is neither" >&2)
    touch "$venv/.complete"
fi
# The project itself: editable, no dependency resolution (the lock has them all). Reinstalled when
# this clone is not the one the environment points at. compat mode = a plain .pth entry, so
# Snakemake's plugin discovery (pkgutil) also sees snakemake_executor_plugin_submitit.
if ! "$venv/bin/python" -I -c "import kdprune, sys; sys.exit(0 if kdprune.__file__.startswith('$repo/') else 1)" 2>/dev/null; then
    "$venv/bin/pip" install -q --no-deps --no-build-isolation --config-settings editable_mode=compat -e "$repo" \
        2> >(grep -v "is ignored: it is neither" >&2)
fi
export VIRTUAL_ENV=$venv
export PATH="$venv/bin:$PATH"
