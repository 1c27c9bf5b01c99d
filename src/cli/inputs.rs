//! Reading the command line's inputs: files, directories and stdin.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::mutate::Input;

/// The inputs of a command: what was read, what could not be (errors), and the paths skipped on
/// purpose (notes, not errors).
#[derive(Debug, Default)]
pub struct ReadInputs {
    pub inputs: Vec<Input>,
    pub errors: Vec<String>,
    pub skipped: Vec<String>,
}

impl ReadInputs {
    /// Tells the user, on stderr, which paths were skipped and why.
    pub fn report_skipped(&self) {
        for skipped in &self.skipped {
            eprintln!("skipped {skipped}");
        }
    }
}

/// Reads every input; an unreadable one is reported and the others still processed.
pub fn read_inputs(paths: &[PathBuf]) -> ReadInputs {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    let mut skipped = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            match std::io::stdin().read_to_end(&mut bytes) {
                Ok(_) => inputs.push(decode("-".into(), bytes)),
                Err(err) => errors.push(format!("cannot read stdin: {err}")),
            }
            continue;
        }
        let files = if path.is_dir() {
            manifest_files(path, &mut errors, &mut skipped)
        } else {
            vec![path.clone()]
        };
        for file in files {
            match std::fs::read(&file) {
                Ok(bytes) => inputs.push(decode(file.display().to_string(), bytes)),
                Err(err) => errors.push(format!("cannot read {}: {err}", file.display())),
            }
        }
    }
    ReadInputs {
        inputs,
        errors,
        skipped,
    }
}

/// An input's text. Bytes that are not UTF-8 do not lose the whole input: their lines are
/// decoded lossily and noted, so the documents holding them are reported and the rest kept.
pub fn decode(name: String, bytes: Vec<u8>) -> Input {
    let bytes = match String::from_utf8(bytes) {
        Ok(text) => {
            return Input {
                name,
                text,
                not_utf8_lines: Vec::new(),
            };
        }
        Err(err) => err.into_bytes(),
    };
    let mut text = String::with_capacity(bytes.len());
    let mut not_utf8_lines = Vec::new();
    for (number, line) in (1..).zip(bytes.split_inclusive(|&b| b == b'\n')) {
        match std::str::from_utf8(line) {
            Ok(line) => text.push_str(line),
            Err(_) => {
                text.push_str(&String::from_utf8_lossy(line));
                not_utf8_lines.push(number);
            }
        }
    }
    Input {
        name,
        text,
        not_utf8_lines,
    }
}

/// Every manifest file below `dir`, sorted so output order is stable. Each real directory is read
/// once (by device and inode), so a symlink back up the tree (`ln -s . self`) or to a directory
/// read already is skipped and reported in `skipped`, not followed.
fn manifest_files(dir: &Path, errors: &mut Vec<String>, skipped: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut seen: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        match std::fs::metadata(&dir) {
            Ok(meta) => {
                if let Some(first) = seen.get(&(meta.dev(), meta.ino())) {
                    let why = if dir.starts_with(first) {
                        "a symlink loop"
                    } else {
                        "the same directory"
                    };
                    skipped.push(format!(
                        "{}: {why}, {} is read already",
                        dir.display(),
                        first.display()
                    ));
                    continue;
                }
                seen.insert((meta.dev(), meta.ino()), dir.clone());
            }
            Err(err) => {
                errors.push(format!("cannot read directory {}: {err}", dir.display()));
                continue;
            }
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) => {
                errors.push(format!("cannot read directory {}: {err}", dir.display()));
                continue;
            }
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        // Depth first in name order, so the first path to a directory is the same on every run.
        paths.sort();
        for path in paths.into_iter().rev() {
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
