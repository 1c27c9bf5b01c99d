//! Reading the command line's inputs: files, directories and stdin.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::mutate::Input;

/// Reads every input; an unreadable one is reported and the others still processed.
pub fn read_inputs(paths: &[PathBuf]) -> (Vec<Input>, Vec<String>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => inputs.push(Input {
                    name: "-".into(),
                    text,
                }),
                Err(err) => errors.push(format!("cannot read stdin: {err}")),
            }
            continue;
        }
        let files = if path.is_dir() {
            manifest_files(path, &mut errors)
        } else {
            vec![path.clone()]
        };
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => inputs.push(Input {
                    name: file.display().to_string(),
                    text,
                }),
                Err(err) => errors.push(format!("cannot read {}: {err}", file.display())),
            }
        }
    }
    (inputs, errors)
}

/// Every manifest file below `dir`, sorted so output order is stable.
fn manifest_files(dir: &Path, errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) => {
                errors.push(format!("cannot read directory {}: {err}", dir.display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| matches!(ext, "yaml" | "yml" | "json"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
