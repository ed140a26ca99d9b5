# Sourced by the other scripts: makes sure the project-local tools exist, installing what is missing,
# and knows the project's shape (which functions there are).
# Everything goes into .venv (Python tools: moto, cargo-lambda, ziglang, cfn-lint, aws-sam-translator);
# nothing is installed by hand or system-wide except Debian packages through apt-get.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/tools/requirements.txt"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && $sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A venv at DIR holding REQUIREMENTS, re-installed only when the requirements file changes. Also for
# tools whose pins clash with the project venv's (checkov, the SAM CLI): venvs of their own, off PATH.
ensure_python_env() {
  local dir=$1 requirements=$2
  if ! command -v python3 >/dev/null; then
    ensure_debian_packages python3 python3-venv
  fi
  if [ ! -x "$dir/bin/python3" ]; then
    log "creating the venv $(basename "$dir")"
    python3 -m venv "$dir" 2>/dev/null || { ensure_debian_packages python3-venv && python3 -m venv "$dir"; }
  fi
  local stamp="$dir/.requirements.sha256" want
  want=$(cat "$requirements" "$ROOT/tools/requirements-pip.txt" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing $(basename "$requirements") into $(basename "$dir")"
    # A lock names every package with its hashes (scripts/lock-python writes them from the .in
    # files); a file whose hash is not listed is refused.
    local hashes=()
    if grep -q -- '--hash=sha256:' "$requirements"; then
      hashes=(--require-hashes)
      "$dir/bin/python3" -m pip install -q --disable-pip-version-check --require-hashes \
        -r "$ROOT/tools/requirements-pip.txt"
    fi
    "$dir/bin/python3" -m pip install -q --disable-pip-version-check "${hashes[@]}" -r "$requirements"
    echo "$want" > "$stamp"
  fi
}

# The project venv (moto, cargo-lambda, ziglang, cfn-lint, ...), first on PATH.
ensure_venv() {
  command -v cargo >/dev/null || { echo "cargo is required (rustup)" >&2; return 1; }
  ensure_python_env "$VENV" "$REQUIREMENTS"
  # The venv first: cargo finds cargo-lambda there, and cargo-lambda runs zig as `python3 -m ziglang`.
  export PATH="$VENV/bin:$PATH"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() {  # port, seconds
  local port=$1 deadline=$((SECONDS + ${2:-30}))
  until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.2
  done
}

# The functions of the workspace, one name a line: every folder under functions/ (folder = package =
# binary = template resource = events/ folder), so no script keeps a list of its own.
functions() {
  local dir
  for dir in "$ROOT"/functions/*/; do
    [ -f "$dir/Cargo.toml" ] && basename "$dir"
  done
}

# mdBook, for the book under docs/: installed once into .tools/ with cargo (about a minute on 2 cores).
MDBOOK_VERSION=0.5.4
ensure_mdbook() {
  export PATH="$ROOT/.tools/bin:$PATH"
  if [[ "$(mdbook --version 2>/dev/null)" != "mdbook v$MDBOOK_VERSION" ]]; then
    log "installing mdbook $MDBOOK_VERSION into .tools"
    cargo install mdbook --version "$MDBOOK_VERSION" --locked --no-default-features --features search --root "$ROOT/.tools"
  fi
}

# cargo-deny, for the dependencies' licences, bans and sources (deny.toml): installed once into
# .tools/ with cargo (about two minutes on 2 cores).
CARGO_DENY_VERSION=0.20.2
ensure_cargo_deny() {
  export PATH="$ROOT/.tools/bin:$PATH"
  if [[ "$(cargo-deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]]; then
    log "installing cargo-deny $CARGO_DENY_VERSION into .tools"
    cargo install cargo-deny --version "$CARGO_DENY_VERSION" --locked --root "$ROOT/.tools"
  fi
}
