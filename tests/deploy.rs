//! The shipped systemd unit is valid for systemd (systemd-analyze verify against the built binary) and keeps the
//! promises the README makes: notify + watchdog, config check before start, a dedicated user, hardening, reload.

mod common;

use std::process::Command;

use common::*;

const BIN: &str = "/usr/local/bin/scenewatch";
const CONFIG: &str = "/etc/scenewatch/scenewatch.toml";

/// `(section, key, value)` of every assignment in a unit file, in file order. Comments (`#`, `;`) and blank lines
/// are skipped; the shipped unit has no line continuations.
fn assignments(unit: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// A systemd time span in seconds (`30`, `30s`, `1min 30s`, `500ms`); None for `infinity` or anything unparsable.
fn timespan_secs(v: &str) -> Option<f64> {
    let mut rest = v.trim();
    if rest.is_empty() || rest == "infinity" {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..n_end].parse().ok()?;
        rest = rest[n_end..].trim_start();
        let u_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..u_end] {
            "" | "s" | "sec" | "second" | "seconds" => 1.0,
            "ms" | "msec" => 1e-3,
            "us" | "usec" => 1e-6,
            "m" | "min" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hour" | "hours" => 3600.0,
            _ => return None,
        };
        total += n * unit;
        rest = rest[u_end..].trim_start();
    }
    Some(total)
}

/// Everything in `unit` that breaks a promise of the README, one line per problem, each starting with the key.
fn unit_problems(unit: &str) -> Vec<String> {
    let all = assignments(unit);
    let service = |key: &str| -> Vec<&str> {
        all.iter()
            .filter(|(s, k, _)| s == "Service" && k == key)
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    // for single-valued settings the last assignment wins
    let last = |key: &str| service(key).last().copied();
    let is_true = |v: Option<&str>| matches!(v, Some("yes" | "true" | "on" | "1"));
    let mut problems = Vec::new();
    let mut want = |key: &str, ok: bool, what: &str, got: Option<&str>| {
        if !ok {
            problems.push(format!("{key}: {what}, got {got:?}"));
        }
    };

    let v = last("Type");
    want(
        "Type",
        v == Some("notify"),
        "notify (READY=1, watchdog pings)",
        v,
    );
    let v = last("WatchdogSec");
    want(
        "WatchdogSec",
        v.and_then(timespan_secs).is_some_and(|s| s > 0.0),
        "a positive duration (0 or infinity turns the watchdog off)",
        v,
    );
    let validate = format!("{BIN} validate --config {CONFIG}");
    let pre = service("ExecStartPre");
    want(
        "ExecStartPre",
        pre.contains(&validate.as_str()),
        &format!("exactly `{validate}` (a `-` prefix would ignore its failure)"),
        pre.first().copied(),
    );
    let v = last("ExecStart");
    want(
        "ExecStart",
        v == Some(format!("{BIN} run --config {CONFIG}").as_str()),
        "runs the config that ExecStartPre validated",
        v,
    );
    let v = last("ExecReload");
    want(
        "ExecReload",
        v == Some("/bin/kill -HUP $MAINPID"),
        "SIGHUP (the daemon reloads on it)",
        v,
    );
    for key in ["User", "Group"] {
        let v = last(key);
        want(key, v == Some("scenewatch"), "the dedicated user", v);
    }
    let v = last("StateDirectory");
    want(
        "StateDirectory",
        v == Some("scenewatch"),
        "scenewatch (the spool's default $STATE_DIRECTORY)",
        v,
    );
    let v = last("Restart");
    want("Restart", v == Some("on-failure"), "on-failure", v);
    let v = last("RestartPreventExitStatus");
    want(
        "RestartPreventExitStatus",
        v.is_some_and(|v| v.split_whitespace().any(|s| s == "2")),
        "contains 2 (bad config: a restart will not fix it)",
        v,
    );
    let drain = scenewatch::config::ShutdownConfig::default().drain_timeout_secs;
    let v = last("TimeoutStopSec");
    want(
        "TimeoutStopSec",
        v.and_then(timespan_secs).is_some_and(|s| s > drain),
        &format!("longer than the default drain (shutdown.drain_timeout_secs = {drain} s)"),
        v,
    );
    for key in ["NoNewPrivileges", "PrivateTmp", "ProtectHome"] {
        let v = last(key);
        want(key, is_true(v), "yes", v);
    }
    let v = last("ProtectSystem");
    want(
        "ProtectSystem",
        v == Some("strict"),
        "strict (the whole file system read-only)",
        v,
    );
    // a group missing on the host fails the start (216/GROUP): only groups every Debian has; `render` is a drop-in
    let groups: Vec<&str> = service("SupplementaryGroups")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .collect();
    want(
        "SupplementaryGroups",
        groups.iter().all(|g| *g == "video"),
        "only video (render comes from configure-unit.sh where it exists)",
        groups.first().copied(),
    );
    // systemd merges repeated capability assignments; an empty one resets: the set is empty only when the last is
    for key in ["CapabilityBoundingSet", "AmbientCapabilities"] {
        let v = last(key);
        want(key, v == Some(""), "present and empty (no capabilities)", v);
    }
    problems
}

#[test]
fn systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(repo().join("deploy/scenewatch.service")).expect("unit");
    let problems = unit_problems(&unit);
    assert!(
        problems.is_empty(),
        "deploy/scenewatch.service:\n{problems:#?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("scenewatch.service");
    std::fs::write(&path, unit.replace(BIN, bin())).expect("write");
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

/// Each check above fails on a unit that breaks it: the shipped unit with one line changed.
#[test]
fn unit_checks_reject_a_wrong_unit() {
    let unit = std::fs::read_to_string(repo().join("deploy/scenewatch.service")).expect("unit");
    let validate = format!("ExecStartPre={BIN} validate --config {CONFIG}");
    let cases: &[(&str, &str, &str)] = &[
        ("Type=notify", "Type=simple", "Type"),
        ("WatchdogSec=30", "WatchdogSec=0", "WatchdogSec"),
        ("WatchdogSec=30", "WatchdogSec=infinity", "WatchdogSec"),
        ("WatchdogSec=30", "WatchdogSec=", "WatchdogSec"),
        (
            &validate,
            &format!("ExecStartPre=-{BIN} validate --config {CONFIG}"),
            "ExecStartPre",
        ),
        (
            &format!("ExecStart={BIN} run --config {CONFIG}"),
            &format!("ExecStart={BIN} run --config /etc/scenewatch/other.toml"),
            "ExecStart",
        ),
        (
            "ExecReload=/bin/kill -HUP $MAINPID",
            "ExecReload=/bin/kill -USR1 $MAINPID",
            "ExecReload",
        ),
        ("User=scenewatch", "User=root", "User"),
        ("Group=scenewatch", "Group=root", "Group"),
        (
            "StateDirectory=scenewatch",
            "StateDirectory=scenewatch2",
            "StateDirectory",
        ),
        ("Restart=on-failure", "Restart=always", "Restart"),
        (
            "SupplementaryGroups=video",
            "SupplementaryGroups=video render",
            "SupplementaryGroups",
        ),
        (
            "RestartPreventExitStatus=2",
            "RestartPreventExitStatus=20",
            "RestartPreventExitStatus",
        ),
        ("TimeoutStopSec=60", "TimeoutStopSec=10", "TimeoutStopSec"),
        (
            "NoNewPrivileges=yes",
            "NoNewPrivileges=no",
            "NoNewPrivileges",
        ),
        ("PrivateTmp=yes", "PrivateTmp=no", "PrivateTmp"),
        ("ProtectHome=yes", "ProtectHome=read-only", "ProtectHome"),
        (
            "ProtectSystem=strict",
            "ProtectSystem=full",
            "ProtectSystem",
        ),
        (
            "CapabilityBoundingSet=",
            "CapabilityBoundingSet=CAP_SYS_ADMIN",
            "CapabilityBoundingSet",
        ),
        (
            "CapabilityBoundingSet=",
            "CapabilityBoundingSet=\nCapabilityBoundingSet=CAP_NET_ADMIN",
            "CapabilityBoundingSet",
        ),
        (
            "AmbientCapabilities=",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "AmbientCapabilities",
        ),
    ];
    for (from, to, key) in cases {
        let hits = unit.lines().filter(|l| l == from).count();
        assert_eq!(hits, 1, "the shipped unit has `{from}` once");
        let bad: String = unit
            .lines()
            .map(|l| if l == *from { *to } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        let problems = unit_problems(&bad);
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{key}:"))),
            "`{to}` not caught: {problems:?}"
        );
    }
    // a key in the wrong section does not count
    let moved = unit.replace("NoNewPrivileges=yes\n", "") + "NoNewPrivileges=yes\n";
    assert!(unit_problems(&moved)
        .iter()
        .any(|p| p.starts_with("NoNewPrivileges:")));
    assert_eq!(timespan_secs("1min 30s"), Some(90.0));
    assert_eq!(timespan_secs("500ms"), Some(0.5));
    assert_eq!(timespan_secs("30"), Some(30.0));
    assert_eq!(timespan_secs("soon"), None);
}

/// Under systemd stderr is the journal (JOURNAL_STREAM names it): every line carries its syslog priority, so
/// `journalctl -p err` finds the errors; with another stderr (a file, a pipe) the lines stay as they were.
#[test]
fn journald_priorities_when_stderr_is_the_journal() {
    use std::os::unix::fs::MetadataExt;
    let cfg = write_config(
        free_port(),
        "jr",
        "[[cameras]]\nname = \"a\"\nurl = \"test://ball\"\n",
    );
    // an unusable spool: the daemon stops at start with an error
    let text = std::fs::read_to_string(&cfg.path).expect("config");
    let spool = cfg.dir.path().join("spool.redb").display().to_string();
    std::fs::write(
        &cfg.path,
        text.replace(&spool, "/proc/nonexistent/spool.redb"),
    )
    .expect("rewrite");
    let run = |journal: bool| -> String {
        let log = cfg.dir.path().join(format!("stderr-{journal}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let meta = file.metadata().expect("metadata");
        let stream = if journal {
            format!("{}:{}", meta.dev(), meta.ino())
        } else {
            format!("{}:{}", meta.dev(), meta.ino() + 1)
        };
        let out = Command::new(bin())
            .args(["run", "--config"])
            .arg(&cfg.path)
            .env("RUST_LOG", "info,ort=warn")
            .env("JOURNAL_STREAM", stream)
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .status()
            .expect("run");
        assert!(!out.success());
        std::fs::read_to_string(&log).expect("log")
    };
    let journal = run(true);
    let lines: Vec<&str> = journal.lines().collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("<3>")).collect();
    assert!(
        errors.iter().any(|l| l.contains("spool")),
        "the start-up error is filed as err: {journal}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with('<')),
        "every line has its priority: {journal}"
    );
    for l in lines.iter().filter(|l| l.starts_with('<')) {
        assert!(
            !l.contains("\u{1b}[") && !l[3..].starts_with(char::is_numeric),
            "no colours, no timestamp (the journal stamps): {l}"
        );
    }
    // config problems (not log events) are filed as err too, one journal line each
    let good = std::fs::read_to_string(&cfg.path).expect("config");
    std::fs::write(
        &cfg.path,
        good.replace("name = \"a\"", "name = \"Bad Name\""),
    )
    .expect("rewrite");
    let bad = run(true);
    assert!(
        !bad.is_empty() && bad.lines().all(|l| l.starts_with("<3>")),
        "{bad}"
    );
    std::fs::write(&cfg.path, &good).expect("restore");
    let plain = run(false);
    assert!(
        !plain
            .lines()
            .any(|l| l.starts_with("<3>") || l.starts_with("<6>") || l.starts_with("<4>")),
        "JOURNAL_STREAM naming another file: no prefixes: {plain}"
    );
    assert!(plain.contains("spool"), "{plain}");
}

/// deploy/configure-unit.sh: the render group only where it exists, ReadWritePaths for what the config writes
/// outside the state directory (created), nothing for what lies inside.
#[test]
fn configure_unit_writes_the_host_specific_drop_ins() {
    let cfg = write_config(
        free_port(),
        "cu",
        "[[cameras]]\nname = \"a\"\nurl = \"test://ball\"\n",
    );
    let drop_ins = cfg.dir.path().join("scenewatch.service.d");
    let script = |group: &str, managed: &str| {
        let out = Command::new("sh")
            .arg(repo().join("deploy/configure-unit.sh"))
            .env("SCENEWATCH_BIN", bin())
            .env("CONFIG", &cfg.path)
            .env("DROPIN_DIR", &drop_ins)
            .env("GPU_GROUP", group)
            .env("SERVICE_USER", "root")
            .env("MANAGED", managed)
            .output()
            .expect("configure-unit.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let read = |name: &str| std::fs::read_to_string(drop_ins.join(name)).ok();
    // `video` exists on every Debian: it stands in for render on boxes that have no GPU group
    script("video", "/var/lib/scenewatch /var/cache/scenewatch");
    assert!(read("10-render.conf")
        .is_some_and(|t| t.contains("[Service]\nSupplementaryGroups=video\n")));
    let media = cfg.dir.path().join("media");
    let paths = read("20-paths.conf").expect("paths drop-in");
    let line = paths
        .lines()
        .find_map(|l| l.strip_prefix("ReadWritePaths="))
        .expect("ReadWritePaths");
    let listed: Vec<&str> = line.split_whitespace().collect();
    assert!(listed.contains(&media.to_str().expect("utf-8")), "{paths}");
    assert!(
        listed.contains(&cfg.dir.path().to_str().expect("utf-8")),
        "the spool's directory: {paths}"
    );
    assert!(media.is_dir(), "created for the service");
    // no such group: no drop-in (a unit naming it would fail with 216/GROUP); everything inside the managed dirs
    script("no-such-group-here", &cfg.dir.path().display().to_string());
    assert!(read("10-render.conf").is_none());
    assert!(read("20-paths.conf").is_none());
    assert!(!drop_ins.exists(), "an empty drop-in directory is removed");
}
