//! Developer tasks that are more than one cargo command: `cargo xtask test` (the whole
//! suite CI runs: set-up, format and lint checks, every test) and `cargo xtask lint`.

use std::process::Command;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install what the tests need (nftables, the Python MCP SDK), check format and lints, run
    /// every test.
    Test,
    /// `cargo fmt --check` and clippy with -D warnings on userspace and eBPF crates.
    Lint,
    /// Install what the tests need: nftables from apt when `nft` is missing, and a Python venv
    /// (target/mcp-venv) with the official MCP SDK and schemathesis.
    Setup,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Test => {
            setup()?;
            lint()?;
            cargo(&["test", "--workspace", "--exclude", "netspy-ebpf"])
        }
        Task::Lint => lint(),
        Task::Setup => setup(),
    }
}

/// Outside peers the tests drive netspy with: the official Python MCP SDK, schemathesis
/// (fuzzes the REST API from its OpenAPI document), and Prometheus' own OpenMetrics parser.
const PYTHON_PEERS: [&str; 3] = [
    "mcp==2.3.0",
    "schemathesis==4.32.5",
    "prometheus-client==0.26.0",
];

fn setup() -> anyhow::Result<()> {
    if !found("nft") {
        eprintln!("xtask: installing nftables (the netns drop tests use nft)");
        run(Command::new("apt-get").arg("update").arg("-qq"))?;
        run(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "nftables",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let venv = workspace_root().join("target/mcp-venv");
    let python = venv.join("bin/python");
    let has_peers = Command::new(&python)
        .args([
            "-c",
            "import mcp.client.streamable_http, schemathesis, prometheus_client",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_peers {
        eprintln!(
            "xtask: installing {} into {}",
            PYTHON_PEERS.join(" "),
            venv.display()
        );
        run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
        run(Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PYTHON_PEERS))?;
    }
    Ok(())
}

fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default()
}

fn lint() -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--exclude",
        "netspy-ebpf",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // The eBPF crate only builds for bpfel-unknown-none, with nightly and build-std.
    run(Command::new("rustup")
        .args([
            "run",
            "nightly",
            "cargo",
            "clippy",
            "--package",
            "netspy-ebpf",
        ])
        .args([
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--release",
        ])
        .args(["--", "-D", "warnings"])
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO"))
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

fn cargo(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args(args))
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
