//! The Debian package: `cargo xtask deb` builds it from the release binary, and the test
//! command builds one from the binary under test, installs it with `dpkg -i`, checks what it
//! put where, purges it, and boots it under a real systemd (`nspawn.rs`).
//!
//! Built with Debian's own tools rather than cargo-deb: `dpkg-deb` assembles the archive and
//! `dpkg-shlibdeps` computes the library dependencies, both on every Debian machine, where
//! cargo-deb would be compiled first (minutes of CI's budget on two cores).

use std::{
    fs,
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{apt_install_missing, run, workspace_root};

const PACKAGE: &str = "netspy";

/// Maintainer scripts. The service is not enabled or started on install (a privileged
/// tracer starts when its operator says so: `systemctl enable --now netspy`); an upgrade
/// restarts a running one on the new binary; removal stops it; purge forgets it was enabled.
const POSTINST: &str = r#"#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
    if [ "$1" = configure ] && [ -n "$2" ]; then
        systemctl try-restart netspy.service || true
    fi
fi
"#;
const PRERM: &str = r#"#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop netspy.service || true
fi
"#;
const POSTRM: &str = r#"#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -f /etc/systemd/system/multi-user.target.wants/netspy.service
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
"#;

/// What the package installs besides the binary: (path in the package, contents, mode).
fn files(binary: &Path) -> anyhow::Result<Vec<(String, Vec<u8>, u32)>> {
    let root = workspace_root();
    let read = |p: &str| fs::read(root.join(p)).with_context(|| format!("reading {p}"));
    let output = |args: &[&str]| -> anyhow::Result<Vec<u8>> {
        let out = Command::new(binary)
            .args(args)
            .output()
            .with_context(|| format!("running {} {args:?}", binary.display()))?;
        if !out.status.success() {
            bail!("{} {args:?} failed: {}", binary.display(), out.status);
        }
        Ok(out.stdout)
    };
    let mut man_pages = vec![(
        "usr/share/man/man1/netspy.1.gz".to_owned(),
        gzip(&output(&["man"])?)?,
        0o644,
    )];
    for subcommand in SUBCOMMAND_PAGES {
        man_pages.push((
            format!("usr/share/man/man1/netspy-{subcommand}.1.gz"),
            gzip(&output(&["man", subcommand])?)?,
            0o644,
        ));
    }
    let copyright = format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: netspy\n\nFiles: *\nCopyright: the netspy authors\nLicense: {}\n",
        manifest_value("Cargo.toml", "license")?
    );
    // Stripped, as Debian ships binaries (the eBPF object is data inside, untouched).
    let stripped = root.join("target/netspy.stripped");
    run(Command::new("strip")
        .arg("--strip-unneeded")
        .arg("-o")
        .arg(&stripped)
        .arg(binary))?;
    let mut files: Vec<(String, Vec<u8>, u32)> = vec![
        ("usr/bin/netspy".into(), fs::read(&stripped)?, 0o755),
        (
            "lib/systemd/system/netspy.service".into(),
            read("packaging/netspy.service")?,
            0o644,
        ),
        (
            "etc/netspy/netspy.toml".into(),
            read("packaging/netspy.toml")?,
            0o644,
        ),
        (
            "usr/share/bash-completion/completions/netspy".into(),
            output(&["completions", "bash"])?,
            0o644,
        ),
        (
            "usr/share/zsh/vendor-completions/_netspy".into(),
            output(&["completions", "zsh"])?,
            0o644,
        ),
        (
            "usr/share/fish/vendor_completions.d/netspy.fish".into(),
            output(&["completions", "fish"])?,
            0o644,
        ),
        (
            "usr/share/doc/netspy/copyright".into(),
            copyright.into_bytes(),
            0o644,
        ),
        (
            "usr/share/doc/netspy/README.md".into(),
            read("README.md")?,
            0o644,
        ),
    ];
    files.extend(man_pages);
    Ok(files)
}

/// The subcommands with a man page of their own (`netspy man daemon`: netspy-daemon(1)).
const SUBCOMMAND_PAGES: [&str; 4] = ["trace", "daemon", "mcp", "completions"];

/// The string value of `key` in the manifest at `path` (relative to the workspace): the
/// package's metadata is netspy's, not this crate's.
fn manifest_value(path: &str, key: &str) -> anyhow::Result<String> {
    let text = fs::read_to_string(workspace_root().join(path))?;
    text.lines()
        .find_map(|l| {
            let value = l.strip_prefix(key)?.trim_start().strip_prefix('=')?.trim();
            Some(value.trim_matches('"').to_owned())
        })
        .with_context(|| format!("no {key} in {path}"))
}

/// `bytes` compressed as Debian wants man pages (`gzip -9n`: no name or time stored).
fn gzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut child = Command::new("gzip")
        .arg("-9n")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running gzip")?;
    let mut stdin = child.stdin.take().context("gzip's stdin")?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writing to gzip panicked"))??;
    if !out.status.success() {
        bail!("gzip failed: {}", out.status);
    }
    Ok(out.stdout)
}

fn stdout_of(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Builds `netspy_<version>_<arch>.deb` of `binary` in `out`; its path.
pub fn build(binary: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    apt_install_missing(&[("dpkg-shlibdeps", "dpkg-dev"), ("strip", "binutils")])?;
    let version = env!("CARGO_PKG_VERSION");
    let arch = stdout_of(Command::new("dpkg").arg("--print-architecture"))?;
    let tree = out.join(format!("{PACKAGE}-deb"));
    let _ = fs::remove_dir_all(&tree);
    let mut installed_size = 0;
    for (path, contents, mode) in files(binary)? {
        let dest = tree.join(&path);
        let dir = dest.parent().unwrap_or(&tree);
        fs::create_dir_all(dir)?;
        // Whatever the umask: every directory of the package is 0755.
        for d in dir.ancestors().take_while(|d| d.starts_with(&tree)) {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755))?;
        }
        fs::write(&dest, &contents).with_context(|| format!("writing {}", dest.display()))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
        installed_size += contents.len().div_ceil(1024);
    }
    // dpkg-shlibdeps reads the package's name from a debian/control beside it.
    let debian = out.join("shlibdeps/debian");
    fs::create_dir_all(&debian)?;
    fs::write(
        debian.join("control"),
        format!("Source: {PACKAGE}\n\nPackage: {PACKAGE}\nArchitecture: any\n"),
    )?;
    let depends = stdout_of(
        Command::new("dpkg-shlibdeps")
            .args(["-O", "-e"])
            .arg(tree.join("usr/bin/netspy"))
            .current_dir(out.join("shlibdeps"))
            .stderr(std::process::Stdio::null()),
    )?;
    let depends = depends
        .strip_prefix("shlibs:Depends=")
        .context("dpkg-shlibdeps gave no dependencies")?;
    let control = tree.join("DEBIAN");
    fs::create_dir_all(&control)?;
    let description = manifest_value("netspy/Cargo.toml", "description")?;
    let homepage = manifest_value("Cargo.toml", "repository")?;
    fs::write(
        control.join("control"),
        format!(
            "Package: {PACKAGE}\nVersion: {version}\nArchitecture: {arch}\n\
             Maintainer: the netspy authors <netspy@localhost>\nDepends: {depends}\n\
             Section: net\nPriority: optional\nInstalled-Size: {installed_size}\n\
             Homepage: {homepage}\nDescription: {description}\n \
             A daemon that loads eBPF programs and serves what they see (REST API, MCP tools,\n \
             Prometheus metrics), and a CLI that asks it. Runs as the netspy.service unit.\n"
        ),
    )?;
    fs::write(control.join("conffiles"), "/etc/netspy/netspy.toml\n")?;
    for (name, script) in [("postinst", POSTINST), ("prerm", PRERM), ("postrm", POSTRM)] {
        let path = control.join(name);
        fs::write(&path, script)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    let deb = out.join(format!("{PACKAGE}_{version}_{arch}.deb"));
    run(Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(&deb))?;
    Ok(deb)
}

/// True when this machine has a netspy of its own (the package, a binary in /usr/bin, or
/// the unit), which the host check must not replace, stop or purge.
fn netspy_installed() -> bool {
    let package = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", PACKAGE])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("installed"));
    package
        || Path::new("/usr/bin/netspy").exists()
        || Path::new("/etc/systemd/system/netspy.service").exists()
}

/// Builds a package of the binary under test; installs it on this machine, checks it and
/// purges it (unless the machine has a netspy of its own); then boots it under systemd.
pub fn check(binary: &Path) -> anyhow::Result<()> {
    let out = workspace_root().join("target/deb-test");
    fs::create_dir_all(&out)?;
    let deb = build(binary, &out)?;
    if netspy_installed() {
        eprintln!(
            "xtask: this machine has a netspy installed: the package is not installed over \
             it (only booted in systemd-nspawn)"
        );
        return crate::nspawn::boot_check(&deb);
    }
    let result = (|| {
        run(Command::new("dpkg").arg("-i").arg(&deb))?;
        let version = stdout_of(Command::new("/usr/bin/netspy").arg("--version"))?;
        if version != format!("netspy {}", env!("CARGO_PKG_VERSION")) {
            bail!("/usr/bin/netspy --version said {version:?}");
        }
        let listed = stdout_of(Command::new("dpkg").args(["-L", PACKAGE]))?;
        for path in [
            "/usr/bin/netspy",
            "/lib/systemd/system/netspy.service",
            "/etc/netspy/netspy.toml",
            "/usr/share/man/man1/netspy.1.gz",
            "/usr/share/man/man1/netspy-daemon.1.gz",
            "/usr/share/bash-completion/completions/netspy",
        ] {
            if !listed.lines().any(|l| l == path) || !Path::new(path).exists() {
                bail!("the package did not install {path}:\n{listed}");
            }
        }
        // The installed config is all comments: the daemon's defaults, read from the file.
        let config = stdout_of(Command::new("/usr/bin/netspy").args(["daemon", "--print-config"]))?;
        if !config.contains("config file: /etc/netspy/netspy.toml") {
            bail!("the installed daemon did not read its config file:\n{config}");
        }
        started(Path::new("/usr/bin/netspy"))?;
        let man = stdout_of(Command::new("man").args(["-P", "cat", "netspy"]))
            .or_else(|_| stdout_of(Command::new("zcat").arg("/usr/share/man/man1/netspy.1.gz")))?;
        if !man.contains("netspy") {
            bail!("the man page is empty");
        }
        eprintln!("xtask: {} installs and runs: {version}", deb.display());
        Ok(())
    })();
    run(Command::new("dpkg").args(["--purge", PACKAGE]))?;
    result?;
    crate::nspawn::boot_check(&deb)
}

/// Starts the installed daemon on a free loopback port and waits (up to a minute) until it
/// says its probes are attached.
fn started(netspy: &Path) -> anyhow::Result<()> {
    use std::io::BufRead as _;
    let mut child = Command::new(netspy)
        .args(["daemon", "--listen", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("starting the installed daemon")?;
    let stderr = child.stderr.take().context("the daemon's stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    let outcome = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("probes attached") => break Ok(()),
            Ok(line) => seen.push(line),
            Err(_) => {
                break Err(anyhow::anyhow!(
                    "the installed daemon never got ready: {seen:?}"
                ));
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    outcome
}
