//! Writes `src/internal/native-constants.ts` (relative to the repository
//! root) from `fdpass::wire_constants`; with `--check`, fails instead if the
//! file is missing or differs.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().skip(1).any(|a| a == "--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("src/internal/native-constants.ts");
    let wanted = fdpass::wire_constants::typescript();
    if check {
        return match std::fs::read_to_string(&path) {
            Ok(current) if current == wanted => ExitCode::SUCCESS,
            _ => {
                eprintln!(
                    "src/internal/native-constants.ts is stale: run `cargo run -p fdpass --example gen-constants`"
                );
                ExitCode::FAILURE
            }
        };
    }
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, wanted));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("could not write {}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}
