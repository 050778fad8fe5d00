//! `--plot DIR`: one SVG timeline per video, drawn with `plotters` from plain data. The upper panel shows each
//! rule label's best per-frame score over stream time with its threshold as a dashed line; the lower panel one
//! row per label for the truth intervals and one for the alerts, so a late, missing or spurious alert is visible
//! next to the score that caused it.
//!
//! [`render_line_chart`] draws stacked panels of curves over a shared x axis with an optional marked x (used by
//! `adapt`'s learning curve: losses and validation F1 per epoch, the chosen epoch marked).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::metrics::{Alert, Interval};

/// One label's per-frame best detection score (`(stream seconds, score)`) and the rule threshold it is held to.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreSeries {
    pub label: String,
    pub points: Vec<(f64, f32)>,
    pub threshold: f32,
}

/// What one video's picture shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The manifest's `file`, shown as the title.
    pub title: String,
    pub duration_s: f64,
    pub truth: BTreeMap<String, Vec<Interval>>,
    pub alerts: Vec<Alert>,
    pub scores: Vec<ScoreSeries>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("plot {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("plot {}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
}

const WIDTH: u32 = 1200;
const SCORE_HEIGHT: u32 = 300;
const ROW_HEIGHT: u32 = 34;
const TRUTH_COLOUR: RGBColor = RGBColor(46, 139, 87);
const ALERT_COLOUR: RGBColor = RGBColor(214, 39, 40);
const PALETTE: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// A file name for a video's picture: its manifest `file` with every character outside `[A-Za-z0-9._-]` as `_`,
/// plus `.svg` (`$SCENEWATCH_MEDIA/vtest.avi` → `_SCENEWATCH_MEDIA_vtest.avi.svg`); `index` keeps names unique.
pub fn file_name(index: usize, file: &str) -> String {
    let clean: String = file
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{index:02}-{}.svg", clean.trim_start_matches('_'))
}

/// Writes `dir/name` (creating `dir`) and returns its path.
pub fn write_svg(dir: &Path, name: &str, t: &Timeline) -> Result<PathBuf, PlotError> {
    let path = dir.join(name);
    std::fs::create_dir_all(dir).map_err(|source| PlotError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let svg = render_svg(t).map_err(|message| PlotError::Draw {
        path: path.clone(),
        message,
    })?;
    std::fs::write(&path, svg).map_err(|source| PlotError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The labels with a row: those with truth, alerts or scores.
fn row_labels(t: &Timeline) -> Vec<String> {
    let set: BTreeSet<&str> = t
        .truth
        .keys()
        .map(String::as_str)
        .chain(t.alerts.iter().map(|a| a.label.as_str()))
        .chain(t.scores.iter().map(|s| s.label.as_str()))
        .collect();
    set.into_iter().map(str::to_string).collect()
}

/// The picture as SVG text.
pub fn render_svg(t: &Timeline) -> Result<String, String> {
    let labels = row_labels(t);
    let rows = (labels.len() * 2).max(1);
    let height = SCORE_HEIGHT + 60 + ROW_HEIGHT * rows as u32;
    let duration = if t.duration_s.is_finite() && t.duration_s > 0.0 {
        t.duration_s
    } else {
        1.0
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&t.title, ("sans-serif", 18))
            .map_err(|e| e.to_string())?;
        let (upper, lower) = root.split_vertically(SCORE_HEIGHT);

        let mut chart = ChartBuilder::on(&upper)
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..duration, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .y_desc("best score")
            .x_desc("stream time (s)")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, s) in t.scores.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|&(x, y)| (x, f64::from(y))),
                    colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(format!("{} score", s.label))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            let th = f64::from(s.threshold);
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, th), (duration, th)],
                    6,
                    4,
                    colour.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?
                .label(format!("{} threshold {:.2}", s.label, s.threshold))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(1))
                });
        }
        if !t.scores.is_empty() {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|e| e.to_string())?;
        }

        // lower panel: rows 2k = truth of label k, 2k+1 = its alerts (drawn top to bottom)
        let row_names: Vec<String> = labels
            .iter()
            .flat_map(|l| [format!("{l} truth"), format!("{l} alerts")])
            .collect();
        // a segmented 0..k range has k + 1 slots: rows n - 1 ..= 0, top to bottom
        let n = rows as i32;
        let mut bands = ChartBuilder::on(&lower)
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..duration, (0..n - 1).into_segmented())
            .map_err(|e| e.to_string())?;
        bands
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => usize::try_from(n - 1 - *i)
                    .ok()
                    .and_then(|r| row_names.get(r).cloned())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .x_desc("stream time (s)")
            .draw()
            .map_err(|e| e.to_string())?;
        let row_span = |row: usize| {
            let bottom = n - 1 - row as i32;
            (SegmentValue::Exact(bottom), SegmentValue::Exact(bottom + 1))
        };
        for (k, label) in labels.iter().enumerate() {
            let (b, top) = row_span(2 * k);
            let truth = t.truth.get(label).map_or(&[][..], Vec::as_slice);
            bands
                .draw_series(truth.iter().map(|iv| {
                    Rectangle::new(
                        [(iv.start, top.clone()), (iv.end, b.clone())],
                        TRUTH_COLOUR.filled(),
                    )
                }))
                .map_err(|e| e.to_string())?;
            let (b, top) = row_span(2 * k + 1);
            bands
                .draw_series(t.alerts.iter().filter(|a| &a.label == label).map(|a| {
                    Rectangle::new(
                        [(a.stream_start, top.clone()), (a.stream_end, b.clone())],
                        ALERT_COLOUR.mix(0.85).filled(),
                    )
                }))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// One named curve of a [`Panel`].
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One panel of a [`LineChart`]: its curves share a y axis; `y_range` = `None` fits the data.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub y_desc: String,
    pub y_range: Option<(f64, f64)>,
    pub curves: Vec<Curve>,
}

/// Panels stacked top to bottom over one x axis; `marker` draws a dashed vertical line at x with its label in
/// every panel.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_desc: String,
    pub panels: Vec<Panel>,
    pub marker: Option<(f64, String)>,
}

const PANEL_HEIGHT: u32 = 320;
const MARKER_COLOUR: RGBColor = RGBColor(90, 90, 90);

/// The y range that shows `curves` (non-finite points ignored), padded 5 %; `(0, 1)` when there is nothing.
fn fit_range(curves: &[Curve]) -> (f64, f64) {
    let ys = curves
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite());
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// A [`LineChart`] as SVG text.
pub fn render_line_chart(c: &LineChart) -> Result<String, String> {
    let panels = c.panels.len().max(1) as u32;
    let height = 40 + PANEL_HEIGHT * panels;
    let xs = c
        .panels
        .iter()
        .flat_map(|p| p.curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)))
        .chain(c.marker.iter().map(|m| m.0))
        .filter(|x| x.is_finite());
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    let (x0, x1) = if !x0.is_finite() {
        (0.0, 1.0)
    } else if x1 - x0 < 1e-9 {
        (x0 - 0.5, x1 + 0.5)
    } else {
        (x0, x1)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&c.title, ("sans-serif", 18))
            .map_err(|e| e.to_string())?;
        let areas = root.split_evenly((panels as usize, 1));
        for (panel, area) in c.panels.iter().zip(areas.iter()) {
            let (y0, y1) = panel.y_range.unwrap_or_else(|| fit_range(&panel.curves));
            let mut chart = ChartBuilder::on(area)
                .margin(8)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .y_desc(panel.y_desc.as_str())
                .x_desc(c.x_desc.as_str())
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, curve) in panel.curves.iter().enumerate() {
                let colour = PALETTE[i % PALETTE.len()];
                chart
                    .draw_series(LineSeries::new(
                        curve.points.iter().copied().filter(|p| p.1.is_finite()),
                        colour.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(curve.label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
            if let Some((mx, label)) = &c.marker {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(*mx, y0), (*mx, y1)],
                        6,
                        4,
                        MARKER_COLOUR.stroke_width(1),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(label.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], MARKER_COLOUR.stroke_width(1))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Timeline {
        Timeline {
            title: "tl_person_a.mkv".into(),
            duration_s: 30.0,
            truth: [
                ("person".to_string(), vec![Interval::new(10.0, 20.0)]),
                ("vehicle".to_string(), vec![]),
            ]
            .into(),
            alerts: vec![
                Alert {
                    label: "person".into(),
                    stream_start: 11.5,
                    stream_end: 22.0,
                    noticed: 12.0,
                },
                Alert {
                    label: "vehicle".into(),
                    stream_start: 2.0,
                    stream_end: 4.0,
                    noticed: 4.0,
                },
            ],
            scores: vec![
                ScoreSeries {
                    label: "person".into(),
                    points: (0..60)
                        .map(|i| {
                            let t = f64::from(i) * 0.5;
                            (t, if (10.0..20.0).contains(&t) { 0.8 } else { 0.1 })
                        })
                        .collect(),
                    threshold: 0.5,
                },
                ScoreSeries {
                    label: "vehicle".into(),
                    points: vec![(0.0, 0.2), (3.0, 0.45), (30.0, 0.1)],
                    threshold: 0.4,
                },
            ],
        }
    }

    #[test]
    fn writes_an_svg_with_truth_alerts_scores_and_thresholds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("plots");
        let path = write_svg(
            &out,
            &file_name(0, "$SCENEWATCH_CACHE/timelines/tl_person_a.mkv"),
            &sample(),
        )
        .expect("written");
        assert_eq!(
            path,
            out.join("00-SCENEWATCH_CACHE_timelines_tl_person_a.mkv.svg")
        );
        let svg = std::fs::read_to_string(&path).expect("read");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("tl_person_a.mkv"), "title");
        for text in [
            "person truth",
            "person alerts",
            "vehicle truth",
            "vehicle alerts",
            "person threshold 0.50",
        ] {
            assert!(svg.contains(text), "missing text «{text}»");
        }
        // one truth interval (green) and two alerts (red), as filled rectangles
        let truth = svg.matches("fill=\"#2E8B57\"").count();
        let alerts = svg.matches("fill=\"#D62728\"").count();
        assert_eq!(
            (truth, alerts),
            (1, 2),
            "rect fills: truth {truth}, alerts {alerts}"
        );
        // the score lines (polylines) and the dashed thresholds (one short line per dash)
        assert!(svg.matches("<polyline").count() >= 2, "score lines");
    }

    #[test]
    fn degenerate_input_still_draws() {
        let t = Timeline {
            title: "empty".into(),
            duration_s: 0.0,
            truth: BTreeMap::new(),
            alerts: vec![],
            scores: vec![],
        };
        let svg = render_svg(&t).expect("drawn");
        assert!(svg.contains("</svg>"));
    }

    #[test]
    fn line_chart_draws_every_curve_and_the_marker() {
        let chart = LineChart {
            title: "learning curve".into(),
            x_desc: "epoch".into(),
            panels: vec![
                Panel {
                    y_desc: "loss".into(),
                    y_range: None,
                    curves: vec![
                        Curve {
                            label: "train loss".into(),
                            points: vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.3)],
                        },
                        Curve {
                            label: "val loss".into(),
                            points: vec![(1.0, 1.0), (2.0, 0.6), (3.0, f64::NAN)],
                        },
                    ],
                },
                Panel {
                    y_desc: "F1".into(),
                    y_range: Some((0.0, 1.0)),
                    curves: vec![Curve {
                        label: "val macro-F1".into(),
                        points: vec![(1.0, 0.4), (2.0, 0.8), (3.0, 0.9)],
                    }],
                },
            ],
            marker: Some((2.0, "chosen epoch 2".into())),
        };
        let svg = render_line_chart(&chart).expect("drawn");
        for text in [
            "learning curve",
            "train loss",
            "val loss",
            "val macro-F1",
            "chosen epoch 2",
            "epoch",
        ] {
            assert!(svg.contains(text), "missing text «{text}»");
        }
        assert!(svg.matches("<polyline").count() >= 3, "three curves");
        let empty = LineChart {
            title: "empty".into(),
            x_desc: "x".into(),
            panels: vec![],
            marker: None,
        };
        assert!(render_line_chart(&empty).expect("drawn").contains("</svg>"));
    }
}
