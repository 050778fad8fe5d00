//! Command line: parses the arguments and calls the subcommand in [`scenewatch::cmd`]. Exit codes: 0 ok (messages
//! the broker did not acknowledge before the drain timeout stay in the spool), 1 runtime failure, 2 bad config, 3
//! alerts or summaries lost (not acknowledged when the drain ended and not in the spool, because it could not be
//! written), 130 a second SIGTERM/SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use scenewatch::cmd::{self, exit_code};

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
        /// Print the directories the daemon writes (media, spool), one per line, for `ReadWritePaths=`.
        #[arg(long)]
        writable_paths: bool,
    },
    /// Natural-language prompts: score them on photos or videos before deploying.
    Prompts {
        #[command(subcommand)]
        command: PromptsCommand,
    },
    /// Teach a camera a task from a few labelled photos and videos (`adapt train`), and try the head (`adapt test`).
    Adapt {
        #[command(subcommand)]
        command: AdaptCommand,
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
        /// Default 2, or 1 with --inputs.
        #[arg(long)]
        repeat: Option<usize>,
        /// Phases to skip: bound, e2e, python, capacity, decode.
        #[arg(long, value_delimiter = ',')]
        skip: Vec<String>,
        /// Inputs to measure, each in full: clip (the input as it is) and camera-shaped files made once and
        /// cached: camera1080, camera1080h265, camera720, camera360 (docs/performance.md).
        #[arg(long, value_delimiter = ',')]
        inputs: Vec<String>,
    },
    /// Measure alerts, photo detections and prompt rankings against a manifest of labelled media (docs/eval.md).
    Eval {
        /// The manifest (TOML: [[video]], [[photo]], [[prompt]] entries with their truth).
        manifest: PathBuf,
        /// Print one JSON object instead of the tables.
        #[arg(long)]
        json: bool,
        /// Directory to write one SVG timeline per video.
        #[arg(long)]
        plot: Option<PathBuf>,
        /// Calibration sweep: replay the run with this label's rule at every `min_score` of --sweep-scores and
        /// every `min_frames` of --sweep-frames, and print the curve (recall, false alerts per hour, latency).
        #[arg(long)]
        sweep: Option<String>,
        /// LO:HI:STEP of the swept min_score.
        #[arg(long, default_value = "0.35:0.7:0.025", value_parser = parse_range)]
        sweep_scores: (f32, f32, f32),
        /// The min_frames values swept.
        #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
        sweep_frames: Vec<usize>,
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

#[derive(Subcommand)]
enum AdaptCommand {
    /// Train a task head: EXAMPLES has one sub-folder per class (photos, videos) and optionally ranges.csv
    /// (file,start,end,class). Writes the head, and next to it a report and a learning curve.
    Train(cmd::adapt::TrainArgs),
    /// Score photos or videos with a head (one line per photo or per clip), or report on a labelled folder.
    Test(cmd::adapt::TestArgs),
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ort=warn"));
    use std::io::IsTerminal;
    // logs go to stderr (stdout is for command output such as `detect` JSON); colours only on a terminal
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    if scenewatch::journal::stderr_is_journal() {
        // under systemd: `<3>`… priority prefixes, so `journalctl -p err` finds the errors; the journal stamps time
        let format = tracing_subscriber::fmt::format()
            .with_target(false)
            .with_ansi(false)
            .without_time();
        builder
            .with_ansi(false)
            .event_format(scenewatch::journal::PriorityPrefix(format))
            .init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Validate {
            file,
            config,
            writable_paths,
        } => {
            let Some(path) = file.or(config) else {
                eprintln!("validate: give the config file (scenewatch validate FILE)");
                return ExitCode::from(2);
            };
            cmd::validate::run(&path, writable_paths)
        }
        Command::Run { config } => cmd::run::run(config),
        Command::Prompts {
            command:
                PromptsCommand::Test {
                    config,
                    camera,
                    prompts,
                    json,
                    inputs,
                },
        } => exit_code(
            cmd::prompts::run(cmd::prompts::TestArgs {
                config,
                camera,
                prompts,
                inputs,
                json,
            })
            .map(drop),
        ),
        Command::Adapt { command } => exit_code(match command {
            AdaptCommand::Train(args) => cmd::adapt::train(args),
            AdaptCommand::Test(args) => cmd::adapt::test(args),
        }),
        Command::Soak {
            config,
            camera,
            input,
            cameras,
            minutes,
            every,
            csv,
        } => exit_code(cmd::soak::run(cmd::soak::SoakArgs {
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
            inputs,
        } => exit_code(cmd::bench::run(cmd::bench::BenchArgs {
            config,
            input,
            seconds,
            json,
            python,
            max_cameras,
            repeat: repeat.unwrap_or(if inputs.is_empty() { 2 } else { 1 }),
            skip,
            inputs,
        })),
        Command::Eval {
            manifest,
            json,
            plot,
            sweep,
            sweep_scores,
            sweep_frames,
        } => cmd::eval::exit_code(cmd::eval::EvalArgs {
            manifest,
            json,
            plot,
            sweep,
            sweep_scores,
            sweep_frames,
        }),
        Command::Detect {
            config,
            images,
            draw,
            pose,
        } => exit_code(cmd::detect::run(cmd::detect::DetectArgs {
            config,
            images,
            draw,
            pose,
        })),
    }
}

/// `LO:HI:STEP` with 0 ≤ LO ≤ HI ≤ 1 and STEP > 0.
fn parse_range(s: &str) -> Result<(f32, f32, f32), String> {
    let parts: Vec<f32> = s
        .split(':')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("'{p}': {e}")))
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [lo, hi, step] if (0.0..=1.0).contains(&lo) && (lo..=1.0).contains(&hi) && step > 0.0 => {
            Ok((lo, hi, step))
        }
        _ => Err(format!(
            "expected LO:HI:STEP with 0 <= LO <= HI <= 1 and STEP > 0, got '{s}'"
        )),
    }
}
