//! The shipped systemd unit is valid for systemd (systemd-analyze verify against the built binary) and keeps the
//! promises the README makes: notify + watchdog, config check before start, a dedicated user, hardening, reload.

mod common;

use std::process::Command;

use common::*;

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(repo().join("deploy/scenewatch.service")).expect("unit");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecStartPre=/usr/local/bin/scenewatch validate --config /etc/scenewatch/scenewatch.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "User=scenewatch",
        "StateDirectory=scenewatch",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "CapabilityBoundingSet=",
        "RestartPreventExitStatus=2",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(line)),
            "unit lacks {line}"
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenewatch.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/scenewatch", bin())).expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (package systemd, installed by scripts/deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && !text.contains("scenewatch.service:"),
        "systemd-analyze verify: {text}"
    );
}
