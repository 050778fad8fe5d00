//! The detector: a model card (`card`), an ORT session checked against it at load, and per frame the card's
//! preprocessing, the session run and the format's decoder (`decode`). Formats: NanoDet-g (shipped), Ultralytics
//! YOLO, YOLOX and RT-DETR/D-FINE exports (docs/detectors.md).
//!
//! At load the session's inputs and outputs are checked against the card — format, input size, label count — and
//! a mismatch names the model, the card, the expected and the found shapes. A model whose height and width are
//! dynamic (the shipped NanoDet) gets the "rectangular" letterbox on grid formats: the card's input size is the box
//! a frame is fit in, padded only to the next multiple of 32 (416×320 for a 4:3 camera in a 416 model), so the
//! padding of a square is not computed.

use std::borrow::Cow;
use std::path::Path;

use ort::session::{SessionInputValue, SessionOutputs};
use ort::value::{Outlet, TensorElementType};

pub use super::decode::{BBox, DecodeParams, Detection};

use super::card::{self, DetectorCard, Fit, Format, YoloLayout};
use super::decode::{detr, nanodet, shape_text, yolo, yolox, DecodeCtx};
use super::preprocess::{fill_input, Letterbox};
use super::runtime::{self, InferError, LoadedModel, SessionOptions};

pub const MAX_DETECTIONS: usize = 100;
/// Bound input tensors kept per detector (shapes: batch size × input size).
const BOUND_INPUTS_KEPT: usize = 4;
/// Input sides of models with dynamic height and width are padded to this (the coarsest stride).
const INPUT_MULTIPLE: u32 = 32;
/// NanoDet-g's TF-export names: the input, and per stride the class-score and box outputs.
const NANODET_INPUT: &str = "input_1:0";
const NANODET_LEVELS: [(u32, &str, &str); 3] = [
    (8, "Identity:0", "Identity_3:0"),
    (16, "Identity_1:0", "Identity_4:0"),
    (32, "Identity_2:0", "Identity_5:0"),
];
/// RT-DETR / D-FINE deploy exports: the input that tells the post-processor the size to scale boxes to.
const DETR_SIZES: &str = "orig_target_sizes";

/// A frame prepared for the model: where it went in the input, and its own size (boxes come back in its pixels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prepared {
    pub lb: Letterbox,
    pub width: u32,
    pub height: u32,
}

impl Prepared {
    /// The model input's (width, height): frames share a batch only when these are equal.
    pub fn input_size(&self) -> (u32, u32) {
        (self.lb.in_w, self.lb.in_h)
    }
}

/// What the session was found to be at load: the names to feed and read, and what the decoder needs.
#[derive(Debug, Clone)]
enum Plan {
    Nanodet {
        input: String,
    },
    Yolo {
        input: String,
        output: String,
        /// None: decided from the first real output (dynamic dimensions).
        layout: Option<YoloLayout>,
    },
    Yolox {
        input: String,
        output: String,
        decoded: bool,
    },
    /// Outputs `labels`, `boxes`, `scores`; the size input is fed as given.
    DetrDeploy {
        input: String,
        sizes: Sizes,
    },
    /// Outputs `logits`, `pred_boxes`; a size input, when the export has one, is fed too.
    DetrRaw {
        input: String,
        sizes: Option<Sizes>,
    },
}

/// The element type of a DETR export's `orig_target_sizes` input: int64 in the reference exports, float32 in some
/// re-exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sizes {
    I64,
    F32,
}

impl Plan {
    fn input(&self) -> &str {
        match self {
            Self::Nanodet { input }
            | Self::Yolo { input, .. }
            | Self::Yolox { input, .. }
            | Self::DetrDeploy { input, .. }
            | Self::DetrRaw { input, .. } => input,
        }
    }

    fn sizes_input(&self) -> Option<Sizes> {
        match self {
            Self::DetrDeploy { sizes, .. } => Some(*sizes),
            Self::DetrRaw { sizes, .. } => *sizes,
            _ => None,
        }
    }
}

/// The detector: an ORT session, its card, and a reusable input buffer.
pub struct Detector {
    pub model: LoadedModel,
    card: DetectorCard,
    plan: Plan,
    input: Vec<f32>,
    params: DecodeParams,
    /// The model takes any height and width (multiples of 32): frames get the rectangular letterbox.
    rect: bool,
    /// The export's batch axis is dynamic: frames of one input size can share a run ([`Detector::run_batch`]).
    batch_axis: bool,
    /// The frame last prepared by [`Detector::prepare`].
    prepared: Option<Prepared>,
    /// Class ids beyond the card's labels were reported (once).
    warned_ids: bool,
    /// IO binding (`[inference] io_binding`), when on.
    bound: Option<Box<Bound>>,
}

/// The detector's IO binding: the image input copied into memory the session's device reads fast (pinned host
/// memory under CUDA, so the upload is one DMA; plain host memory on the CPU), kept between runs of one shape, and
/// the outputs bound to host-accessible memory (pinned under CUDA), where the decoder reads them. A camera's
/// frames keep one shape, so re-binding happens when the batch size or the input size changes.
struct Bound {
    binding: ort::session::IoBinding,
    input_alloc: ort::memory::Allocator,
    output_mem: ort::memory::MemoryInfo<'static>,
    /// Input tensors of the shapes run last, (batch, height, width), most recent last: the batcher's batch
    /// size varies with what arrived, and a pinned allocation per run would cost more than the copy it saves.
    inputs: Vec<((usize, usize, usize), ort::value::Tensor<f32>)>,
    /// The input shape the outputs were bound for: ORT keeps an output bound to a device at the shape of its first
    /// run, so a new shape binds them afresh.
    outputs_for: Option<(usize, usize, usize)>,
}

impl Detector {
    /// Opens the detector a `[models] detector` setting (resolved against `models.dir`) names — a card, or a model
    /// file with its card next to it — as the daemon, `detect`, `bench` and `eval` do.
    pub fn open(
        env: &ort::environment::Environment,
        setting: &Path,
        opts: SessionOptions,
        params: DecodeParams,
    ) -> Result<Self, InferError> {
        // a missing model file is the first thing to say, before its card
        if !card::is_card(setting) && !setting.exists() {
            return Err(InferError::ModelMissing {
                model: "detector",
                path: setting.to_path_buf(),
            });
        }
        let card = DetectorCard::for_setting(setting)?;
        let model = runtime::open_model(env, "detector", &card.model, opts)?;
        Self::new(model, card, params)
    }

    /// Checks an opened session against its card.
    pub fn new(
        model: LoadedModel,
        card: DetectorCard,
        params: DecodeParams,
    ) -> Result<Self, InferError> {
        let (plan, dynamic, batch_axis) = plan_for(&model, &card)?;
        Ok(Self {
            model,
            rect: dynamic && card.format.grid(),
            batch_axis,
            card,
            plan,
            input: Vec::new(),
            params,
            prepared: None,
            warned_ids: false,
            bound: None,
        })
    }

    /// Runs the session through an IO binding from now on (`[inference] io_binding`): on CUDA the input goes
    /// through pinned host memory and the outputs come back into it. The detections are the same either way.
    pub fn use_io_binding(&mut self) -> Result<(), InferError> {
        use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
        let on_cuda = self.model.provider == runtime::CUDA;
        let (input_alloc, output_mem) = if on_cuda {
            let pinned =
                |t| MemoryInfo::new(AllocationDevice::CUDA_PINNED, 0, AllocatorType::Device, t);
            (
                Allocator::new(
                    &self.model.session,
                    pinned(MemoryType::CPUInput).map_err(run_err)?,
                )
                .map_err(run_err)?,
                pinned(MemoryType::CPUOutput).map_err(run_err)?,
            )
        } else {
            (
                Allocator::default(),
                MemoryInfo::new(
                    AllocationDevice::CPU,
                    0,
                    AllocatorType::Device,
                    MemoryType::Default,
                )
                .map_err(run_err)?,
            )
        };
        let binding = self.model.session.create_binding().map_err(run_err)?;
        self.bound = Some(Box::new(Bound {
            binding,
            input_alloc,
            output_mem,
            inputs: Vec::new(),
            outputs_for: None,
        }));
        // what can fail on a device (pinned allocation, binding outputs to it, reading them back) fails on the
        // first run: one run on a blank frame now, so a failure is a start-up matter and never every clip's
        let (cw, ch) = self.card.input;
        let blank = vec![0u8; (cw * ch * 3) as usize];
        if let Err(e) = self.detect(&blank, cw, ch) {
            self.bound = None;
            return Err(e);
        }
        Ok(())
    }

    /// Whether runs go through an IO binding.
    pub fn io_binding(&self) -> bool {
        self.bound.is_some()
    }

    /// The model card the detector was loaded with (labels, thresholds, calibration).
    pub fn card(&self) -> &DetectorCard {
        &self.card
    }

    /// Whether frames get the rectangular letterbox (the model has dynamic height and width).
    pub fn rect(&self) -> bool {
        self.rect
    }

    /// Where a `w`×`h` frame goes in the model input.
    pub fn letterbox(&self, w: u32, h: u32) -> Letterbox {
        let (cw, ch) = self.card.input;
        let fitted = |w, h| {
            if self.rect {
                Letterbox::fit_rect(w, h, cw, ch, INPUT_MULTIPLE)
            } else {
                Letterbox::fit_box(w, h, cw, ch)
            }
        };
        match self.card.pixels.fit {
            Fit::Stretch => Letterbox::stretch(w, h, cw, ch),
            Fit::Centre => fitted(w, h),
            Fit::TopLeft => fitted(w, h).top_left(),
        }
    }

    /// Fills `out` (NCHW) with the model input for a packed RGB frame, as the card says.
    pub fn preprocess(
        &self,
        rgb: &[u8],
        w: u32,
        h: u32,
        out: &mut Vec<f32>,
    ) -> Result<Letterbox, InferError> {
        let lb = self.letterbox(w, h);
        fill_input(rgb, w, h, &lb, &self.card.pixels, out)?;
        Ok(lb)
    }

    /// Detects objects in one packed RGB frame; boxes are in that frame's pixels.
    pub fn detect(&mut self, rgb: &[u8], w: u32, h: u32) -> Result<Vec<Detection>, InferError> {
        self.prepare(rgb, w, h)?;
        self.run()
    }

    /// Preprocessing alone (timed apart from the model): fills the reusable input tensor.
    pub fn prepare(&mut self, rgb: &[u8], w: u32, h: u32) -> Result<(), InferError> {
        let mut input = std::mem::take(&mut self.input);
        let lb = self.preprocess(rgb, w, h, &mut input);
        self.input = input;
        self.prepared = Some(Prepared {
            lb: lb?,
            width: w,
            height: h,
        });
        Ok(())
    }

    /// Runs the model on the frame last prepared and decodes its detections.
    pub fn run(&mut self) -> Result<Vec<Detection>, InferError> {
        let item = self.prepared.take().ok_or(InferError::Data {
            what: "detector",
            message: "run without a prepared frame".into(),
        })?;
        let input = std::mem::take(&mut self.input);
        let out = self.run_batch(&input, &[item]);
        self.input = input;
        out?.pop().ok_or(InferError::Data {
            what: "detector",
            message: "a run gave no result".into(),
        })
    }

    /// Whether the export's batch axis is dynamic, so [`Detector::run_batch`] takes more than one frame.
    pub fn batch_axis(&self) -> bool {
        self.batch_axis
    }

    /// Appends a packed RGB frame's model input to `batch` (the next item of an NCHW batch).
    pub fn prepare_item(
        &self,
        rgb: &[u8],
        w: u32,
        h: u32,
        batch: &mut Vec<f32>,
    ) -> Result<Prepared, InferError> {
        let mut one = Vec::new();
        let lb = self.preprocess(rgb, w, h, &mut one)?;
        batch.extend_from_slice(&one);
        Ok(Prepared {
            lb,
            width: w,
            height: h,
        })
    }

    /// Runs the model once on `items.len()` frames stacked in `input` (all of one input size, as
    /// [`Detector::prepare_item`] appends them) and decodes each frame's detections, in order. More than one item
    /// needs an export with a dynamic batch axis.
    pub fn run_batch(
        &mut self,
        input: &[f32],
        items: &[Prepared],
    ) -> Result<Vec<Vec<Detection>>, InferError> {
        let Some(first) = items.first() else {
            return Ok(Vec::new());
        };
        let bad = |message: String| InferError::Data {
            what: "detector",
            message,
        };
        if items.len() > 1 && !self.batch_axis {
            return Err(bad(format!(
                "{} frames in one run, but the export's batch axis is fixed at 1",
                items.len()
            )));
        }
        if let Some(other) = items.iter().find(|i| i.input_size() != first.input_size()) {
            return Err(bad(format!(
                "frames of different input sizes in one run ({:?} and {:?})",
                first.input_size(),
                other.input_size()
            )));
        }
        let per_item = 3 * (first.lb.in_w * first.lb.in_h) as usize;
        if input.len() != per_item * items.len() {
            return Err(bad(format!(
                "batch input holds {} values, {} frames need {}",
                input.len(),
                items.len(),
                per_item * items.len()
            )));
        }
        let outputs = match self.bound.as_deref_mut() {
            None => {
                let inputs = inputs(&self.plan, &first.lb, items.len(), input)?;
                self.model.session.run(inputs).map_err(run_err)?
            }
            Some(b) => {
                b.bind(
                    &self.plan,
                    &self.model.session,
                    &first.lb,
                    items.len(),
                    input,
                )?;
                self.model
                    .session
                    .run_binding(&b.binding)
                    .map_err(run_err)?
            }
        };
        let mut all = Vec::with_capacity(items.len());
        let mut unknown = 0;
        for (k, item) in items.iter().enumerate() {
            let ctx = DecodeCtx {
                lb: item.lb,
                width: item.width,
                height: item.height,
                classes: &self.card.classes,
                params: self.params,
            };
            let (dets, n) = decode_outputs(&self.plan, &outputs, &ctx, (k, items.len()))?;
            unknown += n;
            all.push(dets);
        }
        drop(outputs);
        if unknown > 0 && !self.warned_ids {
            self.warned_ids = true;
            tracing::warn!(
                card = %self.card.path.display(),
                labels = self.card.classes.len(),
                "the detector output class ids beyond its card's labels (skipped); the card's labels do not match the model"
            );
        }
        Ok(all)
    }

    /// Runs the session alone on an input made by [`Detector::preprocess`] (the benchmark's model time).
    pub fn run_model(&mut self, lb: &Letterbox, input: &[f32]) -> Result<(), InferError> {
        let inputs = inputs(&self.plan, lb, 1, input)?;
        self.model.session.run(inputs).map_err(run_err)?;
        Ok(())
    }
}

impl Bound {
    /// Binds `n` frames of `lb`'s input size (and a DETR export's size input); the outputs once.
    fn bind(
        &mut self,
        plan: &Plan,
        session: &ort::session::Session,
        lb: &Letterbox,
        n: usize,
        data: &[f32],
    ) -> Result<(), InferError> {
        let shape = (n, lb.in_h as usize, lb.in_w as usize);
        match self.inputs.iter().position(|(s, _)| *s == shape) {
            Some(i) => {
                let hit = self.inputs.remove(i);
                self.inputs.push(hit);
            }
            None => {
                let t = ort::value::Tensor::<f32>::new(&self.input_alloc, [n, 3, shape.1, shape.2])
                    .map_err(run_err)?;
                if self.inputs.len() >= BOUND_INPUTS_KEPT {
                    self.inputs.remove(0);
                }
                self.inputs.push((shape, t));
            }
        }
        let Some((_, tensor)) = self.inputs.last_mut() else {
            return Err(InferError::Data {
                what: "detector",
                message: "no bound input tensor".into(),
            });
        };
        let (_, dst) = tensor.try_extract_tensor_mut::<f32>().map_err(run_err)?;
        if dst.len() != data.len() {
            return Err(InferError::Data {
                what: "detector",
                message: format!("bound input holds {} values, got {}", dst.len(), data.len()),
            });
        }
        dst.copy_from_slice(data);
        self.binding
            .bind_input(plan.input(), &*tensor)
            .map_err(run_err)?;
        // the DETR size input is tiny: bound as a plain host tensor
        for (name, value) in inputs(plan, lb, n, data)?.into_iter().skip(1) {
            if let SessionInputValue::Owned(v) = value {
                self.binding
                    .bind_input(name.as_ref(), &v)
                    .map_err(run_err)?;
            }
        }
        if self.outputs_for != Some(shape) {
            self.binding.clear_outputs();
            for o in session.outputs() {
                self.binding
                    .bind_output_to_device(o.name(), &self.output_mem)
                    .map_err(run_err)?;
            }
            self.outputs_for = Some(shape);
        }
        Ok(())
    }
}

fn run_err(e: ort::Error) -> InferError {
    InferError::Run {
        model: "detector",
        message: e.to_string(),
    }
}

/// The session inputs for `n` prepared frames of one input size: the images, and for DETR exports the size to
/// scale boxes to — the model input's own (width, height), so boxes come back in model-input pixels.
fn inputs<'a>(
    plan: &'a Plan,
    lb: &Letterbox,
    n: usize,
    data: &'a [f32],
) -> Result<Vec<(Cow<'a, str>, SessionInputValue<'a>)>, InferError> {
    let dims = [n, 3, lb.in_h as usize, lb.in_w as usize];
    let image = ort::value::TensorRef::from_array_view((dims, data)).map_err(run_err)?;
    let mut v: Vec<(Cow<'a, str>, SessionInputValue<'a>)> =
        vec![(Cow::from(plan.input()), image.into())];
    let (w, h) = (lb.in_w, lb.in_h);
    match plan.sizes_input() {
        None => {}
        Some(Sizes::I64) => {
            let t = ort::value::Tensor::from_array(([n, 2], [w as i64, h as i64].repeat(n)))
                .map_err(run_err)?;
            v.push((Cow::from(DETR_SIZES), t.into()));
        }
        Some(Sizes::F32) => {
            let t = ort::value::Tensor::from_array(([n, 2], [w as f32, h as f32].repeat(n)))
                .map_err(run_err)?;
            v.push((Cow::from(DETR_SIZES), t.into()));
        }
    }
    Ok(v)
}

/// Item `k` of a batch of `n` in a named output, as (shape with a batch of 1, values).
fn output<'o, T: ort::value::PrimitiveTensorElementType>(
    outputs: &'o SessionOutputs<'_>,
    name: &str,
    (k, n): (usize, usize),
) -> Result<(Vec<i64>, &'o [T]), InferError> {
    let v = outputs.get(name).ok_or_else(|| InferError::Run {
        model: "detector",
        message: format!("output {name} missing"),
    })?;
    let (shape, data) = v.try_extract_tensor::<T>().map_err(run_err)?;
    let mut shape = shape.to_vec();
    let part = batch_item(&mut shape, data, k, n).ok_or_else(|| InferError::Run {
        model: "detector",
        message: format!(
            "output {name} has shape {} for a batch of {n}",
            shape_text(&shape)
        ),
    })?;
    Ok((shape, part))
}

/// Item `k` of a batch of `n` along the first axis of `shape`/`data`; `shape` becomes the item's (batch 1). None
/// when the output's first axis is not the batch.
fn batch_item<'d, T>(shape: &mut [i64], data: &'d [T], k: usize, n: usize) -> Option<&'d [T]> {
    if n == 1 {
        return Some(data);
    }
    let first = shape.first_mut()?;
    if *first != n as i64 || k >= n {
        return None;
    }
    *first = 1;
    let per = data.len() / n;
    data.get(k * per..(k + 1) * per)
}

/// Decodes the outputs as the plan says; also how many detections named a class beyond the labels.
fn decode_outputs(
    plan: &Plan,
    outputs: &SessionOutputs<'_>,
    ctx: &DecodeCtx<'_>,
    item: (usize, usize),
) -> Result<(Vec<Detection>, usize), InferError> {
    let bad_output = |message: String| InferError::Run {
        model: "detector",
        message,
    };
    Ok(match plan {
        Plan::Nanodet { .. } => {
            let mut raw = Vec::with_capacity(NANODET_LEVELS.len());
            for (stride, scores, boxes) in NANODET_LEVELS {
                raw.push((
                    stride,
                    output::<f32>(outputs, scores, item)?.1,
                    output::<f32>(outputs, boxes, item)?.1,
                ));
            }
            let levels: Vec<nanodet::Level<'_>> = raw
                .iter()
                .map(|(stride, scores, boxes)| nanodet::Level {
                    stride: *stride,
                    scores,
                    boxes,
                })
                .collect();
            (nanodet::decode(&levels, ctx), 0)
        }
        Plan::Yolo {
            output: name,
            layout,
            ..
        } => {
            let (shape, out) = output::<f32>(outputs, name, item)?;
            (
                yolo::decode(out, &shape, *layout, ctx).map_err(bad_output)?,
                0,
            )
        }
        Plan::Yolox {
            output: name,
            decoded,
            ..
        } => {
            let (shape, out) = output::<f32>(outputs, name, item)?;
            (
                yolox::decode(out, &shape, *decoded, ctx).map_err(bad_output)?,
                0,
            )
        }
        Plan::DetrDeploy { .. } => {
            let labels: Vec<i64> = match output::<i64>(outputs, "labels", item) {
                Ok((_, l)) => l.to_vec(),
                // some exports give int32 ids
                Err(_) => output::<i32>(outputs, "labels", item)?
                    .1
                    .iter()
                    .map(|l| *l as i64)
                    .collect(),
            };
            let (_, boxes) = output::<f32>(outputs, "boxes", item)?;
            let (_, scores) = output::<f32>(outputs, "scores", item)?;
            detr::decode_deploy(&labels, boxes, scores, ctx).map_err(bad_output)?
        }
        Plan::DetrRaw { .. } => {
            let (_, logits) = output::<f32>(outputs, "logits", item)?;
            let (_, boxes) = output::<f32>(outputs, "pred_boxes", item)?;
            (detr::decode_raw(logits, boxes, ctx).map_err(bad_output)?, 0)
        }
    })
}

/// A session input or output as checked at load.
struct Port {
    name: String,
    ty: Option<TensorElementType>,
    shape: Vec<i64>,
}

fn ports(outlets: &[Outlet]) -> Vec<Port> {
    outlets
        .iter()
        .map(|o| Port {
            name: o.name().to_string(),
            ty: o.dtype().tensor_type(),
            shape: o
                .dtype()
                .tensor_shape()
                .map(|s| s.to_vec())
                .unwrap_or_default(),
        })
        .collect()
}

/// Whether a found shape fits an expected one (-1 on either side: any).
fn fits(found: &[i64], expected: &[i64]) -> bool {
    found.len() == expected.len()
        && found
            .iter()
            .zip(expected)
            .all(|(f, e)| *f < 0 || *e < 0 || f == e)
}

fn names(ports: &[Port]) -> String {
    let n: Vec<String> = ports.iter().map(|p| format!("'{}'", p.name)).collect();
    n.join(", ")
}

/// Finds the session's inputs and outputs for the card's format and checks their shapes against the card;
/// also whether the image input's height and width are dynamic, and whether its batch axis is.
fn plan_for(model: &LoadedModel, card: &DetectorCard) -> Result<(Plan, bool, bool), InferError> {
    let mismatch = |message: String| InferError::ModelSignature {
        model: model.name,
        path: model.path.clone(),
        message: format!(
            "{message} (its card {}: {})",
            card.path.display(),
            card.summary()
        ),
    };
    let ins = ports(model.session.inputs());
    let outs = ports(model.session.outputs());
    let c = card.classes.len() as i64;
    let (cw, ch) = (card.input.0 as i64, card.input.1 as i64);

    // the image input
    let image = match card.format {
        Format::Nanodet => ins
            .iter()
            .find(|p| p.name == NANODET_INPUT)
            .ok_or_else(|| {
                mismatch(format!(
                    "no input named '{NANODET_INPUT}' (it has {}): not the NanoDet-g export",
                    names(&ins)
                ))
            })?,
        Format::Yolo | Format::Yolox | Format::Detr => {
            let images: Vec<&Port> = ins.iter().filter(|p| p.name != DETR_SIZES).collect();
            match images.as_slice() {
                [one] => *one,
                _ => {
                    return Err(mismatch(format!(
                        "expected one image input [1, 3, {ch}, {cw}], found inputs {}",
                        names(&ins)
                    )))
                }
            }
        }
    };
    let expected = [1, 3, ch, cw];
    if !fits(&image.shape, &expected) {
        return Err(mismatch(format!(
            "input '{}': expected {}, found {}",
            image.name,
            shape_text(&expected),
            shape_text(&image.shape)
        )));
    }
    if image.ty != Some(TensorElementType::Float32) {
        return Err(mismatch(format!(
            "input '{}' is {:?}, expected float32",
            image.name, image.ty
        )));
    }
    let dynamic = image.shape[2] < 0 && image.shape[3] < 0;
    // every tensor must carry the batch: a size input or an output fixed at 1 would fail a run of two frames
    let batch_axis = image.shape[0] < 0
        && ins
            .iter()
            .chain(outs.iter())
            .all(|p| p.shape.first().is_none_or(|d| *d < 0));
    // the grid size the outputs follow: unknown (any) when the input is dynamic
    let fixed = (!dynamic).then_some(card.input);
    let input = image.name.clone();

    let find = |name: &str| outs.iter().find(|p| p.name == name);
    let check = |name: &str, expected: &[i64]| -> Result<(), InferError> {
        let p = find(name).ok_or_else(|| {
            mismatch(format!(
                "no output named '{name}' (it has {})",
                names(&outs)
            ))
        })?;
        if fits(&p.shape, expected) {
            Ok(())
        } else {
            Err(mismatch(format!(
                "output '{name}': expected {}, found {}",
                shape_text(expected),
                shape_text(&p.shape)
            )))
        }
    };
    // the one output of a YOLO-family export ("output0" from Ultralytics when there are more)
    let single = || -> Result<&Port, InferError> {
        match outs.as_slice() {
            [one] => Ok(one),
            _ => find("output0").ok_or_else(|| {
                mismatch(format!(
                    "expected one output, found {} (name it output0)",
                    names(&outs)
                ))
            }),
        }
    };

    let plan = match card.format {
        Format::Nanodet => {
            for (stride, scores, boxes) in NANODET_LEVELS {
                let cells = fixed.map_or(-1, |(w, h)| ((w / stride) * (h / stride)) as i64);
                check(scores, &[1, cells, c])?;
                check(boxes, &[1, cells, 4 * nanodet::BINS as i64])?;
            }
            Plan::Nanodet { input }
        }
        Format::Yolo => {
            let out = single()?;
            let layout = yolo::layout(&out.shape, card.classes.len(), card.layout)
                .map_err(|e| mismatch(format!("output '{}': {e}", out.name)))?;
            Plan::Yolo {
                input,
                output: out.name.clone(),
                layout,
            }
        }
        Format::Yolox => {
            let out = single()?;
            let grid = fixed.filter(|_| !card.decode_in_inference);
            yolox::check_shape(&out.shape, card.classes.len(), grid)
                .map_err(|e| mismatch(format!("output '{}': {e}", out.name)))?;
            Plan::Yolox {
                input,
                output: out.name.clone(),
                decoded: card.decode_in_inference,
            }
        }
        Format::Detr => {
            let sizes = match ins.iter().find(|p| p.name == DETR_SIZES) {
                None => None,
                Some(s) if fits(&s.shape, &[1, 2]) && s.ty == Some(TensorElementType::Int64) => {
                    Some(Sizes::I64)
                }
                Some(s) if fits(&s.shape, &[1, 2]) && s.ty == Some(TensorElementType::Float32) => {
                    Some(Sizes::F32)
                }
                Some(s) => return Err(mismatch(format!(
                    "input '{DETR_SIZES}': expected int64 (or float32) [1, 2] (width, height), found {:?} {}",
                    s.ty,
                    shape_text(&s.shape)
                ))),
            };
            if find("labels").is_some() || find("scores").is_some() {
                check("labels", &[1, -1])?;
                check("boxes", &[1, -1, 4])?;
                check("scores", &[1, -1])?;
                let Some(sizes) = sizes else {
                    return Err(mismatch(format!(
                        "outputs labels/boxes/scores without the '{DETR_SIZES}' input: boxes in unknown units \
                         (export with the post-processor's size input, docs/detectors.md)"
                    )));
                };
                Plan::DetrDeploy { input, sizes }
            } else if find("logits").is_some() {
                check("logits", &[1, -1, c])?;
                check("pred_boxes", &[1, -1, 4])?;
                Plan::DetrRaw { input, sizes }
            } else {
                return Err(mismatch(format!(
                    "expected outputs labels [1, Q], boxes [1, Q, 4], scores [1, Q] (deploy export) or logits \
                     [1, Q, {c}], pred_boxes [1, Q, 4] (raw), found {}",
                    names(&outs)
                )));
            }
        }
    };
    Ok((plan, dynamic, batch_axis))
}

#[cfg(test)]
mod tests {
    use super::batch_item;

    #[test]
    fn a_batch_item_is_its_slice_of_the_first_axis() {
        let data: Vec<f32> = (0..24).map(|v| v as f32).collect();
        let mut shape = vec![3, 2, 4];
        let item = batch_item(&mut shape, &data, 1, 3);
        assert_eq!(item, Some(&data[8..16]));
        assert_eq!(shape, vec![1, 2, 4], "the item's shape has a batch of 1");
        let mut shape = vec![3, 2, 4];
        assert_eq!(batch_item(&mut shape, &data, 2, 3), Some(&data[16..24]));
        let mut shape = vec![3, 2, 4];
        assert_eq!(batch_item(&mut shape, &data, 3, 3), None, "past the batch");
        let mut shape = vec![1, 6, 4];
        assert_eq!(
            batch_item(&mut shape, &data, 0, 3),
            None,
            "an output whose first axis is not the batch is refused, not sliced wrongly"
        );
        let mut shape = vec![1, 6, 4];
        assert_eq!(
            batch_item(&mut shape, &data, 0, 1),
            Some(&data[..]),
            "batch 1 as is"
        );
    }
}
