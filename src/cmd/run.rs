//! `scenewatch run`: the daemon. Loads the config (exit 2 when it is bad), installs the signal handlers (first
//! SIGTERM/SIGINT drains, a second exits with 130 at once; SIGHUP reloads) and runs the supervisor on a small
//! tokio runtime; its result becomes the exit code `main` documents.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::shutdown::Shutdown;
use crate::supervisor::RunError;

/// Runs until shutdown; the exit code: 0 ok, 1 runtime failure, 2 bad config, 3 alerts or summaries lost.
pub fn run(path: PathBuf) -> ExitCode {
    let cfg = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            crate::journal::eprint_error(&e.to_string());
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::journal::eprint_error(&format!("error: could not start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    let result = rt.block_on(async {
        let sd = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("could not install signal handlers");
                return;
            };
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::info!("shutdown requested: draining (send the signal again to exit at once)");
            sd.trigger();
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
            tracing::warn!("second signal: exiting without draining");
            std::process::exit(130);
        });
        let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                tracing::error!("could not install the SIGHUP handler; reload is unavailable");
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the config");
                // a reload already pending covers this one too
                let _ = reload_tx.try_send(());
            }
        });
        let opts = crate::supervisor::RunOptions {
            config_path: Some(path),
            reload: Some(reload_rx),
            ..Default::default()
        };
        crate::supervisor::run_with(cfg, shutdown.clone(), Arc::new(SystemClock), opts).await
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e @ RunError::Undelivered { .. }) => {
            tracing::error!("{e}");
            ExitCode::from(3)
        }
        Err(e) => {
            tracing::error!("{e}");
            if !crate::journal::stderr_is_journal() {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}
