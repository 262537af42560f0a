//! `config-schema`: writes the schema and the reference page; `config-schema --check` writes
//! nothing and fails when either differs from what the configuration types give.

use std::process::ExitCode;

use auth0_filter_config_schema::{outputs, repo_root, COMMAND};

fn main() -> ExitCode {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => {
            eprintln!("usage: config-schema [--check] (unknown argument {other:?})");
            return ExitCode::FAILURE;
        }
    };
    let files = match outputs() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("config-schema: {e}");
            return ExitCode::FAILURE;
        }
    };
    let root = repo_root();
    let mut stale = Vec::new();
    for (name, text) in files {
        let path = root.join(name);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == text {
            continue;
        }
        if check {
            stale.push(name);
            continue;
        }
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        match written {
            Ok(()) => println!("wrote {name}"),
            Err(e) => {
                eprintln!("config-schema: {name}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if stale.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "config-schema: not what the configuration types give: {}; run `{COMMAND}`",
            stale.join(", ")
        );
        ExitCode::FAILURE
    }
}
