//! ONNX Runtime set-up: loading the shared library (never downloaded: `load-dynamic`), the one process-wide
//! environment, and opening model sessions on the requested execution provider with an honest report of the
//! provider each session really got. Model files are checked at load (exists, expected inputs/outputs), with
//! errors that name the model and its path. Their sha256 is computed and reported (`<prefix>/info`; the text
//! encoder's also keys the label-bank embedding cache), not compared against a known value.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use ort::ep;
use ort::session::Session;
use sha2::{Digest, Sha256};

use crate::config::ProviderChoice;

/// Why inference could not start or run. Each variant names what failed.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("ONNX Runtime library not found (tried {tried}); run ./setup.sh or set models.onnxruntime / ORT_DYLIB_PATH")]
    LibraryMissing { tried: String },
    #[error("ONNX Runtime library {path}: {message}")]
    Library { path: PathBuf, message: String },
    #[error(
        "{model} model file {path} does not exist (models.dir / models.{model} in the config)"
    )]
    ModelMissing { model: &'static str, path: PathBuf },
    #[error("{model} model {path} could not be loaded: {message}")]
    ModelLoad {
        model: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("{model} model {path} is not the expected model: {message}")]
    ModelSignature {
        model: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("CUDA was required (models.provider = \"cuda\") but the {model} session could not use it: {message}")]
    CudaUnavailable {
        model: &'static str,
        message: String,
    },
    #[error("{model} inference failed: {message}")]
    Run {
        model: &'static str,
        message: String,
    },
    #[error("{what}: {message}")]
    Data { what: &'static str, message: String },
    /// The image–text card (`models.image_text`) or one of the files it names is wrong.
    #[error("image-text card {card}: {message}")]
    ImageTextCard { card: PathBuf, message: String },
    /// A task head (`[[cameras.classifiers]]`) that cannot be used on this camera with these models.
    #[error("camera {camera}: classifier head {path}: {message}")]
    Classifier {
        camera: String,
        path: PathBuf,
        message: String,
    },
    /// The detector's model card is missing or wrong (names the card file and the key).
    #[error(transparent)]
    Card(#[from] super::card::CardError),
}

/// Where `setup.sh` installs the library, in the order they are tried after the config and `$ORT_DYLIB_PATH`.
pub const DEFAULT_ORT_PATHS: [&str; 3] = [
    "/usr/local/lib/scenewatch/libonnxruntime.so",
    "/opt/scenewatch/lib/libonnxruntime.so",
    "/var/cache/scenewatch/onnxruntime/cpu/libonnxruntime.so",
];

static ENV: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
static LIB_PATH: OnceLock<PathBuf> = OnceLock::new();
static SHARED_POOL: OnceLock<Option<usize>> = OnceLock::new();
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Finds the library to load: explicit path, then `$ORT_DYLIB_PATH`, then the install locations.
pub fn find_library(configured: Option<&Path>) -> Result<PathBuf, InferError> {
    let mut tried = Vec::new();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = configured {
        candidates.push(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(p));
    }
    candidates.extend(DEFAULT_ORT_PATHS.iter().map(PathBuf::from));
    for c in candidates {
        if c.is_file() {
            return Ok(c);
        }
        tried.push(c.display().to_string());
        // an explicitly configured path that is missing is an error, not a reason to pick another library
        if configured.is_some() {
            break;
        }
    }
    Err(InferError::LibraryMissing {
        tried: tried.join(", "),
    })
}

/// Loads the library and creates the process-wide environment (once; later calls return the first result).
///
/// With `shared_pool = Some(n)` every session runs on one global intra-op pool of `n` threads instead of a pool
/// of its own. Why: the models run one after another on the inference thread (detector per frame, encoder per
/// clip, pose, head), and with private pools each switch lands on a pool whose workers have gone to sleep and on
/// cold caches — measured on the 2-vCPU box, the encoder took 13–14 ms a frame right after the detector against
/// 8 ms on a shared pool (`docs/performance.md`). It also keeps the thread count at `n` however many models load.
pub fn init(
    configured: Option<&Path>,
    shared_pool: Option<usize>,
    spinning: bool,
) -> Result<&'static ort::environment::Environment, InferError> {
    // one caller creates the environment; a concurrent first caller waits for it (tests open models from
    // several threads at once), so the environment and the pool it was made with are always recorded together
    let _first = (ENV.get().is_none()).then(|| INIT.lock().unwrap_or_else(|p| p.into_inner()));
    if ENV.get().is_none() {
        let path = find_library(configured)?;
        let _ = LIB_PATH.set(path.clone());
        let result = ort::init_from(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                let b = b.with_name("scenewatch");
                let b = match shared_pool {
                    Some(n) => b.with_global_thread_pool(
                        ort::environment::GlobalThreadPoolOptions::default()
                            .with_intra_threads(n)
                            .and_then(|o| o.with_inter_threads(1))
                            .and_then(|o| o.with_spin_control(spinning))
                            .map_err(|e| e.to_string())?,
                    ),
                    None => b,
                };
                let _ = SHARED_POOL.set(shared_pool);
                b.build().map_err(|e| e.to_string())
            });
        let _ = ENV.set(result);
    }
    match ENV.get() {
        Some(Ok(env)) => Ok(env),
        Some(Err(message)) => Err(InferError::Library {
            path: LIB_PATH.get().cloned().unwrap_or_default(),
            message: message.clone(),
        }),
        None => Err(InferError::LibraryMissing {
            tried: "(environment not initialised)".into(),
        }),
    }
}

/// `init` with the config's library path and thread-pool choice.
pub fn init_for(
    cfg: &crate::config::Config,
) -> Result<&'static ort::environment::Environment, InferError> {
    init(
        cfg.models.onnxruntime.as_deref(),
        global_pool_for(cfg),
        cfg.inference.spinning,
    )
}

/// The global pool's threads the config asks for: one worker on `thread_pool = "shared"`. One pool serves one
/// caller well; several workers calling into it at once would queue on it.
fn global_pool_for(cfg: &crate::config::Config) -> Option<usize> {
    let plan = cfg.inference_plan();
    (plan.workers == 1 && cfg.inference.thread_pool == crate::config::ThreadPool::Shared)
        .then_some(plan.threads)
}

/// Threads of the shared intra-op pool the environment was created with (None: one pool per session).
pub fn shared_pool() -> Option<usize> {
    SHARED_POOL.get().copied().flatten()
}

/// The path of the loaded ONNX Runtime library, once `init` succeeded.
pub fn library_path() -> Option<&'static Path> {
    LIB_PATH.get().map(|p| p.as_path())
}

/// Session options shared by all models.
#[derive(Debug, Clone, Copy)]
pub struct SessionOptions {
    pub provider: ProviderChoice,
    pub intra_threads: usize,
    /// Run on the environment's global pool when it has one of `intra_threads` threads (one inference worker);
    /// otherwise the session gets a pool of its own.
    pub shared_pool: bool,
    /// Whether idle intra-op threads spin (`[inference] spinning`); set on the session's own pool, the shared
    /// pool gets it when the environment is made.
    pub spinning: bool,
}

impl SessionOptions {
    /// The options every vision/text model gets from the config.
    pub fn from_config(cfg: &crate::config::Config) -> Self {
        Self {
            provider: cfg.models.provider,
            intra_threads: cfg.inference_plan().threads,
            shared_pool: global_pool_for(cfg).is_some(),
            spinning: cfg.inference.spinning,
        }
    }

    /// Whether a session with these options runs on the global pool.
    fn on_global_pool(&self) -> bool {
        self.shared_pool && shared_pool() == Some(self.intra_threads)
    }
}

/// An opened model: its session plus what a user needs to trust it (file, hash, provider really used).
pub struct LoadedModel {
    pub name: &'static str,
    pub path: PathBuf,
    pub sha256: String,
    /// `CUDAExecutionProvider` or `CPUExecutionProvider`: what this session really runs on.
    pub provider: &'static str,
    /// Why CUDA was not used, when it was asked for (auto) and could not be had.
    pub fallback_reason: Option<String>,
    pub load_ms: f64,
    pub session: Session,
}

impl std::fmt::Debug for LoadedModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModel")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("provider", &self.provider)
            .finish()
    }
}

pub const CPU: &str = "CPUExecutionProvider";
pub const CUDA: &str = "CUDAExecutionProvider";

/// Opens `path` as model `name`, CUDA first when asked for, CPU otherwise or as the fallback.
pub fn open_model(
    env: &ort::environment::Environment,
    name: &'static str,
    path: &Path,
    opts: SessionOptions,
) -> Result<LoadedModel, InferError> {
    let started = Instant::now();
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            InferError::ModelMissing {
                model: name,
                path: path.to_path_buf(),
            }
        } else {
            InferError::ModelLoad {
                model: name,
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        }
    })?;
    let sha256 = hex(&Sha256::digest(&bytes));
    let load_err = |message: String| InferError::ModelLoad {
        model: name,
        path: path.to_path_buf(),
        message,
    };
    let build = |cuda: bool| -> Result<Session, String> {
        let mut b = Session::builder(env).map_err(|e| e.to_string())?;
        // on the shared pool ORT ignores (and warns about) per-session thread counts. A process can hold an
        // environment made for another plan (the benchmark runs 1 camera, then many): then a pool of its own.
        if !opts.on_global_pool() {
            if shared_pool().is_some() {
                b = b
                    .with_independent_thread_pool()
                    .map_err(|e| e.to_string())?;
            }
            b = b
                .with_intra_threads(opts.intra_threads)
                .map_err(|e| e.to_string())?
                .with_inter_threads(1)
                .map_err(|e| e.to_string())?
                .with_intra_op_spinning(opts.spinning)
                .map_err(|e| e.to_string())?;
        }
        if cuda {
            b = b
                .with_execution_providers([ep::CUDA::default().build().error_on_failure()])
                .map_err(|e| e.to_string())?;
        }
        b.commit_from_memory(&bytes).map_err(|e| e.to_string())
    };
    let (session, provider, fallback_reason) = match opts.provider {
        ProviderChoice::Cpu => (build(false).map_err(load_err)?, CPU, None),
        ProviderChoice::Cuda => match build(true) {
            Ok(s) => (s, CUDA, None),
            Err(message) => {
                return Err(InferError::CudaUnavailable {
                    model: name,
                    message,
                })
            }
        },
        ProviderChoice::Auto => match build(true) {
            Ok(s) => (s, CUDA, None),
            Err(reason) => {
                let s = build(false).map_err(load_err)?;
                (s, CPU, Some(reason))
            }
        },
    };
    Ok(LoadedModel {
        name,
        path: path.to_path_buf(),
        sha256,
        provider,
        fallback_reason,
        load_ms: started.elapsed().as_secs_f64() * 1e3,
        session,
    })
}

/// Checks that a session has the named inputs/outputs (and fixed dims where given: -1 = any).
pub fn check_signature(
    model: &LoadedModel,
    inputs: &[(&str, &[i64])],
    outputs: &[(&str, &[i64])],
) -> Result<(), InferError> {
    let bad = |message: String| InferError::ModelSignature {
        model: model.name,
        path: model.path.clone(),
        message,
    };
    let check = |kind: &str, have: &[ort::value::Outlet], want: &[(&str, &[i64])]| {
        for (name, dims) in want {
            let Some(o) = have.iter().find(|o| o.name() == *name) else {
                let names: Vec<_> = have.iter().map(|o| o.name().to_string()).collect();
                return Err(bad(format!("no {kind} named '{name}' (it has {names:?})")));
            };
            if let Some(shape) = o.dtype().tensor_shape() {
                let shape: &[i64] = shape;
                let ok = shape.len() == dims.len()
                    && shape
                        .iter()
                        .zip(dims.iter())
                        .all(|(h, w)| *w < 0 || *h < 0 || h == w);
                if !ok {
                    return Err(bad(format!(
                        "{kind} '{name}' has shape {shape:?}, expected {dims:?}"
                    )));
                }
            }
        }
        Ok(())
    };
    check("input", model.session.inputs(), inputs)?;
    check("output", model.session.outputs(), outputs)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
