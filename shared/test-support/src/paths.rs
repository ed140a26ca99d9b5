//! Where the harnesses find the project's tools and its Python venv: known in this one place.

use std::path::PathBuf;

/// The workspace root, from this crate's manifest directory (`shared/test-support`).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(PathBuf::from)
        .unwrap_or(manifest)
}

/// A program under `tools/`.
pub fn tool(relative: &str) -> PathBuf {
    workspace_root().join("tools").join(relative)
}

/// The project venv's Python (`scripts/test` installs it), which has moto and what the tools import.
pub fn venv_python() -> PathBuf {
    workspace_root().join(".venv/bin/python3")
}
