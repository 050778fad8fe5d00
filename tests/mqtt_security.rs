//! MQTT security against a real mosquitto: TLS checked against a CA file (rustls), username/password from a
//! file, a wrong password is refused (and never logged), a missing CA file is a clear start-up error.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const PASSWORD: &str = "Sw-pass-7F3kq9-unique";

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("run tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway CA and a server certificate for 127.0.0.1 / localhost, made with the openssl CLI.
fn make_certs(dir: &Path) {
    let d = |f: &str| dir.join(f);
    sh(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=scenewatch test CA",
        ])
        .arg("-keyout")
        .arg(d("ca.key"))
        .arg("-out")
        .arg(d("ca.crt")));
    sh(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(d("server.key"))
        .arg("-out")
        .arg(d("server.csr")));
    std::fs::write(d("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").expect("ext");
    sh(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(d("server.csr"))
        .arg("-CA")
        .arg(d("ca.crt"))
        .arg("-CAkey")
        .arg(d("ca.key"))
        .arg("-extfile")
        .arg(d("ext.cnf"))
        .arg("-out")
        .arg(d("server.crt")));
}

fn tls_broker(dir: &Path) -> ConfiguredBroker {
    let port = free_port();
    let conf = format!(
        "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {d}/passwd\ncafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\npersistence false\n",
        d = dir.display()
    );
    ConfiguredBroker::start(dir, port, "camuser", PASSWORD, &conf)
}

/// mosquitto_sub / mosquitto_pub connecting like the daemon does: TLS with the test CA, with the password.
fn tls_client(tool: &str, port: u16, certs: &Path) -> Command {
    let mut c = Command::new(tool);
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-u",
        "camuser",
        "-P",
        PASSWORD,
    ])
    .arg("--cafile")
    .arg(certs.join("ca.crt"));
    c
}

fn config(port: u16, password_file: &Path, ca: &Path) -> TestConfig {
    let body = format!(
        "[[cameras]]\nname = \"cam\"\nurl = \"{}\"\nsample_fps = 1.0\n",
        media("vtest.avi").display()
    );
    let cfg = write_config(port, "sec", &body);
    let text = std::fs::read_to_string(&cfg.path).expect("config").replacen(
        "[mqtt]\n",
        &format!(
            "[mqtt]\ntls = true\nca_file = \"{}\"\nusername = \"camuser\"\npassword_file = \"{}\"\n",
            ca.display(),
            password_file.display()
        ),
        1,
    );
    std::fs::write(&cfg.path, text).expect("config");
    cfg
}

#[test]
fn tls_with_ca_file_and_password_file_delivers_and_bad_secrets_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certs(dir.path());
    let broker = tls_broker(dir.path());
    let secrets = tempfile::tempdir().expect("tempdir");
    let good = secrets.path().join("good");
    let bad = secrets.path().join("bad");
    std::fs::write(&good, format!("{PASSWORD}\n")).expect("secret");
    std::fs::write(&bad, "not-the-password\n").expect("secret");

    // a subscriber over TLS with the same CA and credentials
    let out_file = dir.path().join("sub.txt");
    let mut sub = tls_client("mosquitto_sub", broker.port, dir.path())
        .args(["-v", "-t", "sec/#"])
        .stdout(std::fs::File::create(&out_file).expect("sub out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub");
    // wait until the subscriber is really subscribed (a TLS handshake can take a while on a loaded box)
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = tls_client("mosquitto_pub", broker.port, dir.path())
            .args(["-t", "sec/probe", "-m", "ready"])
            .status();
        if String::from_utf8_lossy(&std::fs::read(&out_file).unwrap_or_default())
            .contains("sec/probe ready")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "TLS subscriber never got the probe"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    let cfg = config(broker.port, &good, &dir.path().join("ca.crt"));
    let mut d = Daemon::spawn(&cfg.path, &[("RUST_LOG", "debug,ort=warn")]);
    let (code, log) = d.wait(Duration::from_secs(120));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("tls=true"), "{log}");
    assert!(!log.contains(PASSWORD), "the password must never be logged");
    std::thread::sleep(Duration::from_millis(500));
    let _ = sub.kill();
    let _ = sub.wait();
    // binary JPEG snapshots are in there too
    let got = String::from_utf8_lossy(&std::fs::read(&out_file).unwrap_or_default()).to_string();
    assert!(
        got.contains("sec/cam/alerts {\"seq\":1,"),
        "alerts over TLS: {got}"
    );
    assert!(got.contains("sec/status stopped"), "{got}");

    // wrong password: refused, retried, reported; never crashes, never prints a secret
    let cfg = config(broker.port, &bad, &dir.path().join("ca.crt"));
    let mut d = Daemon::spawn(&cfg.path, &[("RUST_LOG", "debug,ort=warn")]);
    d.wait_log("refusal", Duration::from_secs(60), |l| {
        l.contains("MQTT broker unreachable")
    });
    d.signal("TERM");
    // the second signal means "exit at once" only once the first was handled; sent back to back they can merge
    d.wait_log("drain started", Duration::from_secs(10), |l| {
        l.contains("shutdown requested")
    });
    d.signal("TERM");
    let (_, log) = d.wait(Duration::from_secs(30));
    assert!(
        log.contains("NotAuthorized")
            || log.contains("BadUserNamePassword")
            || log.contains("refused"),
        "the refusal reason is logged: {log}"
    );
    assert!(
        !log.contains("not-the-password") && !log.contains(PASSWORD),
        "{log}"
    );

    // a CA file that does not exist: exit 1 naming the key and the file
    let cfg = config(broker.port, &good, Path::new("/nonexistent/ca.pem"));
    let out = run_daemon(&cfg.path, Duration::from_secs(30));
    let log = no_panic(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("mqtt.ca_file") && log.contains("/nonexistent/ca.pem"),
        "{log}"
    );
}
