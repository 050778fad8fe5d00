//! Command line: `run`, `validate`, `detect`. Exit codes: 0 ok (messages the broker did not acknowledge before the
//! drain timeout stay in the spool), 1 runtime failure, 2 bad config, 3 alerts or summaries lost (not acknowledged
//! when the drain ended and not in the spool, because it could not be written), 130 a second SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use scenewatch::clock::SystemClock;
use scenewatch::config::Config;
use scenewatch::infer::Models;
use scenewatch::shutdown::Shutdown;
use scenewatch::supervisor::RunError;

#[derive(Parser)]
#[command(
    name = "scenewatch",
    version,
    about = "Watches camera streams and tells people over MQTT what is happening"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check a config file (with the environment's overrides): lists every problem — unknown keys, values of the
    /// wrong type or out of range — with its key path, and builds every stage from it without starting any.
    Validate {
        /// The config file (positional or --config).
        file: Option<PathBuf>,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Natural-language prompts: score them on photos or videos before deploying.
    Prompts {
        #[command(subcommand)]
        command: PromptsCommand,
    },
    /// Soak test (not for CI): N copies of a camera (files looped in real time) for M minutes; RSS and queue
    /// depths sampled to a CSV, drift reported at the end. Needs the config's MQTT broker.
    Soak {
        #[arg(long, short)]
        config: PathBuf,
        /// Camera to copy (default: the first).
        #[arg(long)]
        camera: Option<String>,
        /// Video file to use instead of the camera's URL.
        #[arg(long)]
        input: Option<PathBuf>,
        #[arg(long, default_value_t = 4)]
        cameras: usize,
        #[arg(long, default_value_t = 10.0)]
        minutes: f64,
        /// Seconds between samples.
        #[arg(long, default_value_t = 10.0)]
        every: f64,
        #[arg(long, default_value = "soak.csv")]
        csv: PathBuf,
    },
    /// Benchmark (not a test): inference bound, end to end with a local mosquitto, the Python reference
    /// (bench/reference.py) and real-time camera capacity of both, side by side on one clip.
    Bench {
        #[arg(long, short, default_value = "pipelines/demo.toml")]
        config: PathBuf,
        /// Video file (default: the config's first camera's file).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Bounds each phase (capacity steps run at least 20 s).
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Python with onnxruntime, opencv, numpy, paho-mqtt (bench/setup.sh makes it).
        #[arg(long, default_value = "/var/cache/scenewatch/bench-venv/bin/python")]
        python: PathBuf,
        #[arg(long, default_value_t = 16)]
        max_cameras: usize,
        /// Rounds of the throughput phases (bound, e2e, python alternate; the best round of each is kept).
        #[arg(long, default_value_t = 2)]
        repeat: usize,
        /// Phases to skip: bound, e2e, python, capacity.
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
    },
    /// Run the detector and image encoder on photos; print what they see, optionally draw the boxes.
    Detect {
        #[arg(long, short)]
        config: PathBuf,
        /// PNG or JPEG files.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Directory to write `<name>.detections.jpg` with boxes drawn.
        #[arg(long)]
        draw: Option<PathBuf>,
        /// Also run the pose model and print each person's posture (standing / sitting / lying / null).
        #[arg(long)]
        pose: bool,
    },
}

#[derive(Subcommand)]
enum PromptsCommand {
    /// Print each prompt's calibrated score (and raw cosine) per photo, or per clip of a video.
    Test {
        #[arg(long, short)]
        config: PathBuf,
        /// Use this camera's [[cameras.prompts]] (default: the first camera that has prompts).
        #[arg(long)]
        camera: Option<String>,
        /// Prompts to test instead of the config's (repeatable).
        #[arg(long = "prompt")]
        prompts: Vec<String>,
        /// One JSON line per input: {"input", "scores": [{"prompt", "score", "raw"}…]} sorted by score.
        #[arg(long)]
        json: bool,
        /// Photos (PNG/JPEG) or video files.
        #[arg(long = "image", alias = "input", required = true)]
        inputs: Vec<PathBuf>,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ort=warn"));
    use std::io::IsTerminal;
    // logs go to stderr (stdout is for command output such as `detect` JSON); colours only on a terminal
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Validate { file, config } => {
            let Some(path) = file.or(config) else {
                eprintln!("validate: give the config file (scenewatch validate FILE)");
                return ExitCode::from(2);
            };
            match Config::load(&path) {
                Ok(cfg) => {
                    println!(
                        "{}: OK ({} camera(s): {})",
                        path.display(),
                        cfg.cameras.len(),
                        cfg.cameras
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Run { config } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            run_daemon(cfg, config)
        }
        Command::Prompts {
            command:
                PromptsCommand::Test {
                    config,
                    camera,
                    prompts,
                    json,
                    inputs,
                },
        } => match scenewatch::prompts_cli::run(scenewatch::prompts_cli::TestArgs {
            config,
            camera,
            prompts,
            inputs,
            json,
        }) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Soak {
            config,
            camera,
            input,
            cameras,
            minutes,
            every,
            csv,
        } => exit_code(scenewatch::soak::run(scenewatch::soak::SoakArgs {
            config,
            camera,
            input,
            cameras,
            minutes,
            every_secs: every,
            csv,
        })),
        Command::Bench {
            config,
            input,
            seconds,
            json,
            python,
            max_cameras,
            repeat,
            skip,
        } => exit_code(scenewatch::bench::run(scenewatch::bench::BenchArgs {
            config,
            input,
            seconds,
            json,
            python,
            max_cameras,
            repeat,
            skip,
        })),
        Command::Detect {
            config,
            images,
            draw,
            pose,
        } => exit_code(detect(&config, &images, draw.as_deref(), pose)),
    }
}

/// 0 on success; otherwise the error with its causes on stderr and 1.
fn exit_code(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_daemon(cfg: Config, path: PathBuf) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
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
        let opts = scenewatch::supervisor::RunOptions {
            config_path: Some(path),
            reload: Some(reload_rx),
            ..Default::default()
        };
        scenewatch::supervisor::run_with(cfg, shutdown.clone(), Arc::new(SystemClock), opts).await
    });
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e @ RunError::Undelivered { .. }) => {
            tracing::error!("{e}");
            ExitCode::from(3)
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn detect(
    config: &std::path::Path,
    images: &[PathBuf],
    draw: Option<&std::path::Path>,
    pose: bool,
) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let mut models = Models::load(&cfg)?;
    if pose && models.pose.is_none() {
        models.load_pose(&cfg)?;
    }
    for path in images {
        let img = image::open(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        let dets = models.detector.detect(img.as_raw(), w, h)?;
        let postures = match models.pose.as_mut().filter(|_| pose) {
            Some(pm) => {
                scenewatch::infer::pose::postures_for(&dets, &pm.poses(img.as_raw(), w, h)?)
            }
            None => vec![None; dets.len()],
        };
        let top = match models.encoder.as_mut() {
            Some(enc) => enc
                .encode(&[(img.as_raw().as_slice(), w, h)])?
                .first()
                .map(|e| e.top_k(5))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let imagenet: Vec<_> = top
            .iter()
            .map(|(i, p)| serde_json::json!({"class": models.imagenet_labels.get(*i), "p": (p * 1000.0).round() / 1000.0}))
            .collect();
        let line = serde_json::json!({
            "input": path.display().to_string(),
            "detections": dets.iter().zip(&postures).map(|(d, p)| {
                let mut j = serde_json::json!({
                    "label": d.label, "score": (d.score * 1000.0).round() / 1000.0,
                    "box": [d.bbox.x1.round(), d.bbox.y1.round(), d.bbox.x2.round(), d.bbox.y2.round()],
                });
                if pose && d.label == "person" {
                    j["posture"] = serde_json::json!(p);
                }
                j
            }).collect::<Vec<_>>(),
            "imagenet_top5": imagenet,
        });
        println!("{line}");
        if let Some(dir) = draw {
            let mut canvas = img.clone();
            for d in &dets {
                scenewatch::events::snapshot::draw_box(&mut canvas, &d.bbox);
            }
            std::fs::create_dir_all(dir)?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "image".into());
            canvas.save(dir.join(format!("{stem}.detections.jpg")))?;
        }
    }
    Ok(())
}
