#!/usr/bin/env bash
# Creates (once) and activates the project's virtual environment. It lives outside the clone so a
# fresh checkout or CI run reuses it; its name carries a hash of requirements.lock, so a changed
# lock builds a new one and an unchanged lock costs nothing.
#   source scripts/env.sh       install if needed, then put the environment first on PATH
#   scripts/env.sh --relock     rewrite requirements.lock from a fresh resolve of pyproject.toml
#   KDPRUNE_VENV=/path          use that environment instead
#   KDPRUNE_PYTHON=python3.11   the interpreter that creates it
_kdprune_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_kdprune_hash=$(sha256sum "$_kdprune_repo/requirements.lock" | cut -c1-12)
_kdprune_venv=${KDPRUNE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kdprune/venv-$_kdprune_hash}

# The install runs in a subshell with strict error handling, so sourcing this file does not
# change the options of the caller's shell.
_kdprune_setup() (
    set -euo pipefail
    repo=$_kdprune_repo venv=$_kdprune_venv python=${KDPRUNE_PYTHON:-python3}
    quiet() { grep -v "is ignored: it is neither" >&2 || true; }  # the machine's pip config names absent folders

    if [[ "${1:-}" == "--relock" ]]; then
        tmp=$(mktemp -d)
        "$python" -m venv "$tmp/venv"
        "$tmp/venv/bin/pip" install -q "$repo[test]" 2> >(quiet)
        { sed -n '1,2p' "$repo/requirements.lock"; "$tmp/venv/bin/pip" freeze --exclude kdprune; } > "$repo/requirements.lock.new"
        mv "$repo/requirements.lock.new" "$repo/requirements.lock"
        rm -rf "$tmp"
        echo "requirements.lock rewritten"
        exit 0
    fi
    if [[ ! -f "$venv/.complete" ]]; then
        echo "kdprune: creating $venv (first time only: about 1.5 min, 5.5 GB with the CUDA build of torch)" >&2
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        "$python" -m venv "$venv"
        "$venv/bin/pip" install -q -r "$repo/requirements.lock" 2> >(quiet)
        touch "$venv/.complete"
    fi
    # The project itself: editable, no dependency resolution (the lock has them all), reinstalled
    # when the environment points at another clone. compat mode = a plain .pth entry, so
    # Snakemake's plugin discovery (pkgutil) also sees snakemake_executor_plugin_submitit.
    if ! "$venv/bin/python" -I -c "import kdprune, sys; sys.exit(not kdprune.__file__.startswith('$repo/'))" 2>/dev/null; then
        "$venv/bin/pip" install -q --no-deps --no-build-isolation --config-settings editable_mode=compat -e "$repo" >/dev/null 2>&1 \
            || "$venv/bin/pip" install --no-deps --no-build-isolation --config-settings editable_mode=compat -e "$repo"
    fi
)
_kdprune_setup "$@" || { echo "kdprune: environment set-up failed" >&2; return 1 2>/dev/null || exit 1; }
unset -f _kdprune_setup

export VIRTUAL_ENV=$_kdprune_venv
export PATH="$_kdprune_venv/bin:$PATH"
unset _kdprune_repo _kdprune_hash _kdprune_venv
