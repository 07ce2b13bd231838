//! Developer tasks that are more than one cargo command: `cargo xtask test` (the whole
//! suite CI runs: set-up, format and lint checks, every test, the package), `cargo xtask
//! lint`, `cargo xtask bench` (every benchmark, into BENCHMARKS.md) and `cargo xtask deb`.

mod deb;
mod nspawn;

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
    /// Install what the tests need (nftables, systemd-analyze, Prometheus, the Python MCP
    /// SDK), check format and lints, run every test, then build, install, check and purge
    /// the Debian package.
    Test,
    /// `cargo fmt --check` and clippy with -D warnings on userspace and eBPF crates.
    Lint,
    /// Install what the tests need: nftables, systemd (for systemd-analyze) and Prometheus from apt when
    /// missing, and a Python venv (target/mcp-venv) with the official MCP SDK and schemathesis.
    Setup,
    /// Run every benchmark (as root, with no other tracer attached; installs bpftrace,
    /// bpftool and wrk from apt when missing) and write their report to BENCHMARKS.md.
    Bench,
    /// Build the Debian package (`target/debian/netspy_<version>_<arch>.deb`) from a release
    /// build: the binary, the systemd unit, a default config, the man page and completions.
    Deb,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Test => {
            setup()?;
            lint()?;
            cargo(&["test", "--workspace", "--exclude", "netspy-ebpf"])?;
            // The package, of the binary the tests just ran (a release build would take
            // minutes more): built, installed with dpkg, checked, purged.
            deb::check(&workspace_root().join("target/debug/netspy"))
        }
        Task::Lint => lint(),
        Task::Setup => setup(),
        Task::Bench => bench(),
        Task::Deb => {
            cargo(&["build", "--release", "-p", "netspy"])?;
            let root = workspace_root();
            let deb = deb::build(
                &root.join("target/release/netspy"),
                &root.join("target/debian"),
            )?;
            eprintln!("xtask: built {}", deb.display());
            Ok(())
        }
    }
}

/// The benchmarks, in report order: (bench target, heading). Each prints markdown.
const BENCHES: [(&str, &str); 4] = [
    ("overhead", "Probe overhead"),
    ("ingest", "Ingest throughput"),
    ("store", "Store: memory and query latency"),
    ("load", "The daemon under load"),
];

fn bench() -> anyhow::Result<()> {
    apt_install_missing(&[
        ("bpftrace", "bpftrace"),
        ("bpftool", "bpftool"),
        ("wrk", "wrk"),
    ])?;
    let mut sections = String::new();
    for (name, heading) in BENCHES {
        eprintln!("xtask: cargo bench -p netspy --bench {name}");
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["bench", "-p", "netspy", "--bench", name])
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running the {name} benchmark"))?;
        if !output.status.success() {
            bail!("the {name} benchmark failed: {}", output.status);
        }
        let report = String::from_utf8_lossy(&output.stdout);
        let report = report.trim();
        sections.push_str(&format!(
            "## {heading}\n\n`cargo bench -p netspy --bench {name}`\n\n"
        ));
        sections.push_str(report);
        sections.push_str("\n\n");
    }
    let text = format!(
        "# netspy benchmarks\n\nWritten by `cargo xtask bench` (as root; it installs bpftrace, \
         bpftool and wrk, and refuses to run while other tracepoint programs are attached, since \
         it would measure them too). Do not edit by hand: run it again. Absolute times on \
         shared machines drift by 2x between runs, so every comparison below is measured side \
         by side in one run and stated as a difference or a ratio.\n\n{}\n\n{}",
        machine(),
        sections.trim_end()
    );
    let path = workspace_root().join("BENCHMARKS.md");
    std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    eprintln!("xtask: wrote {}", path.display());
    Ok(())
}

/// What the benchmarks ran on, and when.
fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .unwrap_or("unknown CPU")
        .trim()
        .to_owned();
    let memory_gib = read("/proc/meminfo")
        .lines()
        .find_map(|l| {
            l.strip_prefix("MemTotal:")?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "Machine: {cpus} CPUs ({model}), {memory_gib:.0} GiB, Linux {}; run {date}.",
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// Outside peers the tests drive netspy with: the official Python MCP SDK, schemathesis
/// (fuzzes the REST API from its OpenAPI document), and Prometheus' own OpenMetrics parser.
const PYTHON_PEERS: [&str; 3] = [
    "mcp==2.3.0",
    "schemathesis==4.32.5",
    "prometheus-client==0.26.0",
];

/// Installs the Debian packages of the `(command, package)` pairs whose command is missing.
fn apt_install_missing(wanted: &[(&str, &str)]) -> anyhow::Result<()> {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(command, _)| !found(command))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {} from apt", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-qq"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn setup() -> anyhow::Result<()> {
    // The netns drop tests use nft; the unit's tests systemd-analyze; the fleet metrics
    // test a real Prometheus.
    apt_install_missing(&[
        ("nft", "nftables"),
        ("systemd-analyze", "systemd"),
        ("prometheus", "prometheus"),
    ])?;
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
