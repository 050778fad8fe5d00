//! The Debian package (scripts/build_deb.sh) against the real dpkg: built from the binary these tests run, installed
//! with `dpkg -i`, the installed config validated by the service user, the unit verified, and `dpkg --purge` leaves
//! nothing of it behind. Needs root (CI runs as root); on a box where scenewatch is already installed (package,
//! install.sh or a config in /etc/scenewatch) it is skipped rather than touching that installation.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

fn run(cmd: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Purges the package however the test ends.
struct Purge;

impl Drop for Purge {
    fn drop(&mut self) {
        let _ = Command::new("dpkg")
            .args(["--purge", "scenewatch"])
            .output();
    }
}

const FILES: [&str; 6] = [
    "/usr/bin/scenewatch",
    "/usr/lib/scenewatch/libonnxruntime.so",
    "/usr/lib/scenewatch/configure-unit",
    "/usr/share/scenewatch/models/nanodet_g_416.onnx",
    "/lib/systemd/system/scenewatch.service",
    "/usr/lib/sysusers.d/scenewatch.conf",
];

#[test]
fn the_package_installs_validates_and_purges_cleanly() {
    // SAFETY: geteuid has no preconditions
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: installing a package needs root");
        return;
    }
    let installed = run("dpkg-query", &["-W", "scenewatch"]).0
        || Path::new("/etc/scenewatch").exists()
        || FILES.iter().any(|f| Path::new(f).exists());
    if installed {
        eprintln!(
            "skipped: scenewatch is installed on this box; the test does not touch an installation"
        );
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let build = Command::new("bash")
        .arg(repo().join("scripts/build_deb.sh"))
        .env("BIN", bin())
        .env("OUT_DIR", out.path())
        .env("COMPRESS", "none")
        .output()
        .expect("build_deb.sh");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let deb = String::from_utf8_lossy(&build.stdout).trim().to_string();
    assert!(
        deb.ends_with(&format!(
            "/scenewatch_{}_amd64.deb",
            env!("CARGO_PKG_VERSION")
        )),
        "{deb}"
    );

    let _purge = Purge;
    let (ok, log) = run("dpkg", &["-i", &deb]);
    assert!(ok, "dpkg -i: {log}");
    for f in FILES {
        assert!(Path::new(f).is_file(), "{f} installed");
    }
    let (_, conffiles) = run("dpkg-query", &["-W", "-f=${Conffiles}", "scenewatch"]);
    assert!(
        conffiles.contains("/etc/scenewatch/scenewatch.toml"),
        "a conffile: {conffiles}"
    );
    let unit = std::fs::read_to_string("/lib/systemd/system/scenewatch.service").expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/bin/scenewatch run --config /etc/scenewatch/scenewatch.toml")
    );
    assert!(!unit.contains("/usr/local"), "{unit}");
    let config = std::fs::read_to_string("/etc/scenewatch/scenewatch.toml").expect("config");
    assert!(config.contains("/usr/share/scenewatch/models") && !config.contains("/usr/local"));
    let (ok, who) = run("getent", &["passwd", "scenewatch"]);
    assert!(ok, "the service user exists: {who}");
    // the service user reads the config it runs with (0640 root:scenewatch in a 0750 directory)
    let (ok, log) = run(
        "runuser",
        &[
            "-u",
            "scenewatch",
            "--",
            "/usr/bin/scenewatch",
            "validate",
            "--config",
            "/etc/scenewatch/scenewatch.toml",
        ],
    );
    assert!(ok && log.contains("OK"), "validate as scenewatch: {log}");
    let (ok, log) = run(
        "systemd-analyze",
        &["verify", "/lib/systemd/system/scenewatch.service"],
    );
    assert!(
        ok && !log.contains("scenewatch.service:"),
        "systemd-analyze verify: {log}"
    );

    let (ok, log) = run("dpkg", &["--purge", "scenewatch"]);
    assert!(ok, "dpkg --purge: {log}");
    assert!(
        !run("dpkg-query", &["-W", "scenewatch"]).0 || {
            let (_, s) = run("dpkg-query", &["-W", "-f=${Status}", "scenewatch"]);
            s.contains("not-installed")
        }
    );
    for f in FILES.iter().chain(&[
        "/etc/scenewatch",
        "/etc/systemd/system/scenewatch.service.d",
        "/usr/lib/scenewatch",
        "/usr/share/scenewatch",
    ]) {
        assert!(!Path::new(f).exists(), "{f} left after purge");
    }
}
