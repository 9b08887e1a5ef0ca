//! Embeds the built-in `patterns/` and `templates/` folders into the binary.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

fn table(name: &str, root: &Path, code: &mut String) {
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(root, root, &mut files);
    files.sort();
    writeln!(code, "pub static {name}: &[(&str, &str)] = &[").unwrap();
    for rel in files {
        let abs = root.join(&rel);
        println!("cargo:rerun-if-changed={}", abs.display());
        let key = rel.to_str().expect("UTF-8 file names").replace('\\', "/");
        writeln!(
            code,
            "    ({key:?}, include_str!({:?})),",
            abs.display().to_string()
        )
        .unwrap();
    }
    writeln!(code, "];").unwrap();
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut code = String::new();
    table("PATTERNS", &manifest.join("patterns"), &mut code);
    table("TEMPLATES", &manifest.join("templates"), &mut code);
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("builtin.rs");
    fs::write(out, code).unwrap();
}
