//! Builds the kernel programs (netspy-ebpf) so that a plain `cargo build` / `cargo test` is the
//! only command anyone needs, on a fresh machine too:
//! 1. adds `rust-src` to the nightly toolchain when missing (`-Z build-std=core` needs it);
//! 2. when no working `bpf-linker` is on PATH, installs bpf-linker from crates.io once, linked
//!    against the nightly toolchain's own libLLVM (no system LLVM is needed or used), into
//!    `$BPF_LINKER_ROOT` or `$CARGO_HOME/bpf-linker-<version>-nightly-<commit>/`;
//! 3. runs aya-build's nested `cargo +nightly build --target bpfel-unknown-none`.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, anyhow, bail};

const BPF_LINKER_VERSION: &str = "0.13.0";
const EBPF_PACKAGE: &str = "netspy-ebpf";

fn main() -> anyhow::Result<()> {
    let linker_dir = ensure_bpf_linker()?;
    // aya-build's nested cargo inherits our environment: put our bpf-linker first on PATH.
    let path = env::var_os("PATH").unwrap_or_default();
    let path = env::join_paths(std::iter::once(linker_dir).chain(env::split_paths(&path)))?;
    // SAFETY: a build script is single-threaded; nothing else reads the environment now.
    unsafe { env::set_var("PATH", path) };

    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == EBPF_PACKAGE)
        .ok_or_else(|| anyhow!("{EBPF_PACKAGE} is not in the workspace"))?;
    let root_dir = package
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", package.manifest_path))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: EBPF_PACKAGE,
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}

/// Returns the directory holding a working `bpf-linker`, installing it if needed.
fn ensure_bpf_linker() -> anyhow::Result<PathBuf> {
    println!("cargo:rerun-if-env-changed=BPF_LINKER_ROOT");
    println!("cargo:rerun-if-env-changed=PATH");
    let nightly = Nightly::detect()?;
    nightly.ensure_rust_src()?;

    let root = install_root(&nightly)?;
    let bin = root.join("bin");
    if works(&bin.join("bpf-linker")) {
        return Ok(bin);
    }
    if let Some(on_path) = linker_on_path() {
        return Ok(on_path);
    }
    println!(
        "cargo:warning=installing bpf-linker {BPF_LINKER_VERSION} (llvm-{}, linked to the nightly's {}) into {}; once per nightly",
        nightly.llvm_major,
        nightly.llvm_lib,
        root.display()
    );
    let rustflags = [
        format!("-Lnative={}", nightly.libdir.display()),
        format!("-ldylib={}", nightly.llvm_lib),
        format!("-Clink-arg=-Wl,-rpath,{}", nightly.libdir.display()),
    ]
    .join("\x1f");
    let status = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["install", &format!("bpf-linker@{BPF_LINKER_VERSION}")])
        .args(["--locked", "--no-default-features", "--features"])
        .arg(format!("llvm-{},no-llvm-linking", nightly.llvm_major))
        .arg("--root")
        .arg(&root)
        .arg("--target-dir")
        .arg(root.join("build"))
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        // Our stdout is for cargo: directives.
        .stdout(std::io::stderr())
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .status()
        .context("running cargo install bpf-linker")?;
    if !status.success() || !works(&bin.join("bpf-linker")) {
        bail!("installing bpf-linker failed ({status}); see the output above");
    }
    // About 270 MB of intermediates nobody needs again.
    let _ = std::fs::remove_dir_all(root.join("build"));
    Ok(bin)
}

/// Keyed by the nightly commit: the binary is rpath-linked to that toolchain's libLLVM.
fn install_root(nightly: &Nightly) -> anyhow::Result<PathBuf> {
    let base = match (
        env::var_os("BPF_LINKER_ROOT"),
        env::var_os("CARGO_HOME"),
        env::var_os("HOME"),
    ) {
        (Some(root), _, _) => return Ok(PathBuf::from(root)),
        (None, Some(cargo_home), _) => PathBuf::from(cargo_home),
        (None, None, Some(home)) => PathBuf::from(home).join(".cargo"),
        _ => bail!("set BPF_LINKER_ROOT, CARGO_HOME or HOME"),
    };
    let commit = &nightly.commit[..nightly.commit.len().min(12)];
    Ok(base.join(format!("bpf-linker-{BPF_LINKER_VERSION}-nightly-{commit}")))
}

fn linker_on_path() -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?).find(|dir| works(&dir.join("bpf-linker")))
}

fn works(linker: &Path) -> bool {
    Command::new(linker)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

struct Nightly {
    sysroot: PathBuf,
    libdir: PathBuf,
    llvm_major: String,
    llvm_lib: String,
    commit: String,
}

impl Nightly {
    fn detect() -> anyhow::Result<Self> {
        let rustc = |args: &[&str]| {
            output(
                Command::new("rustup")
                    .args(["run", "nightly", "rustc"])
                    .args(args),
            )
        };
        let sysroot = PathBuf::from(rustc(&["--print", "sysroot"])?.trim());
        let version = rustc(&["-vV"])?;
        let field = |key: &str| {
            version
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(str::trim)
        };
        let llvm_major = field("LLVM version:")
            .and_then(|v| v.split('.').next())
            .context("nightly `rustc -vV` names no LLVM version")?
            .to_owned();
        let commit = field("commit-hash:").unwrap_or("unknown").to_owned();
        // The nightly ships its LLVM as lib/libLLVM-<major>-rust-<version>-nightly.so.
        let libdir = sysroot.join("lib");
        let llvm_lib = std::fs::read_dir(&libdir)
            .with_context(|| format!("reading {}", libdir.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .find_map(|name| {
                let stem = name.strip_prefix("lib")?.strip_suffix(".so")?;
                stem.starts_with("LLVM-").then(|| stem.to_owned())
            })
            .with_context(|| format!("no libLLVM-*.so in {}", libdir.display()))?;
        Ok(Self {
            sysroot,
            libdir,
            llvm_major,
            llvm_lib,
            commit,
        })
    }

    fn ensure_rust_src(&self) -> anyhow::Result<()> {
        if self
            .sysroot
            .join("lib/rustlib/src/rust/library/core")
            .exists()
        {
            return Ok(());
        }
        output(Command::new("rustup").args([
            "component",
            "add",
            "rust-src",
            "--toolchain",
            "nightly",
        ]))
        .map(drop)
    }
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}
