//! PNG plots (plotters' bitmap backend): line charts with optional log axes, and matrix
//! heatmaps with a colour scale.
//!
//! Text is rendered with a TrueType font read once at run time ([`ensure_font`]): the file
//! named by `GLASSO_HO_FONT`, else DejaVu Sans or Liberation Sans from the usual system
//! folders (Debian's fonts-dejavu-core, installed by scripts/setup.sh).
//!
//! Log axes are drawn as linear axes over log₁₀ of the values, labelled with the values.

use crate::CliError;
use ndarray::{Array2, ArrayView2};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::path::Path;
use std::sync::OnceLock;

/// Font files tried in order after `GLASSO_HO_FONT`.
pub const FONT_PATHS: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
];

static FONT: OnceLock<Result<(), String>> = OnceLock::new();

/// Loads and registers the plots' font (once per process).
///
/// # Errors
/// [`CliError::NoFont`] when no usable font file is found.
pub fn ensure_font() -> Result<(), CliError> {
    FONT.get_or_init(|| {
        let mut tried: Vec<String> = Vec::new();
        let env = std::env::var("GLASSO_HO_FONT").ok();
        for path in env.iter().map(String::as_str).chain(FONT_PATHS) {
            tried.push(path.to_string());
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(tried.join(", "))
    })
    .clone()
    .map_err(|tried| CliError::NoFont { tried })
}

/// Colours of the series, in order (colour-blind friendly, Okabe–Ito).
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A line.
    Line,
    /// Markers only.
    Points,
    /// A line with markers.
    LinePoints,
    /// A dashed line.
    Dashed,
}

/// One series of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points (non-finite points, and non-positive ones on a log axis, are skipped).
    pub points: Vec<(f64, f64)>,
    /// Drawing style.
    pub mark: Mark,
    /// Colour index into [`PALETTE`].
    pub color: usize,
}

impl Series {
    /// A series.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>, mark: Mark, color: usize) -> Self {
        Self {
            name: name.into(),
            points,
            mark,
            color,
        }
    }
}

/// One panel of line charts.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Caption.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Log₁₀ x axis.
    pub log_x: bool,
    /// Log₁₀ y axis.
    pub log_y: bool,
    /// Series.
    pub series: Vec<Series>,
}

fn plot_error(path: &Path) -> impl Fn(String) -> CliError + '_ {
    move |reason| CliError::Plot {
        path: path.to_path_buf(),
        reason,
    }
}

fn log_label(v: f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        let e = v.round() as i32;
        match e {
            0 => "1".to_string(),
            1 => "10".to_string(),
            _ => format!("1e{e}"),
        }
    } else {
        let x = 10f64.powf(v);
        if (1e-3..1e4).contains(&x) {
            // Two significant digits.
            let e = x.log10().floor() as i32;
            let unit = 10f64.powi(e - 1);
            let r = (x / unit).round() * unit;
            let digits = (1 - e).max(0) as usize;
            format!("{r:.digits$}")
        } else {
            format!("{x:.1e}")
        }
    }
}

fn lin_label(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        "0".to_string()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

fn range_of(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo <= 1e-12 * hi.abs().max(lo.abs()).max(1e-300) {
        let d = if hi.abs() > 0.0 { hi.abs() * 0.05 } else { 1.0 };
        return (lo - d, hi + d);
    }
    let d = (hi - lo) * pad;
    (lo - d, hi + d)
}

fn transform(panel: &Panel, (x, y): (f64, f64)) -> Option<(f64, f64)> {
    let x = if panel.log_x { x.log10() } else { x };
    let y = if panel.log_y { y.log10() } else { y };
    (x.is_finite() && y.is_finite()).then_some((x, y))
}

/// The corner where the legend of `n_series` entries covers the least of the data: the
/// points and their connecting segments (sampled), in plot coordinates; upper right on ties.
fn legend_corner(
    pts: &[Vec<(f64, f64)>],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> SeriesLabelPosition {
    let (w, h) = (0.36, (0.05 + 0.055 * pts.len() as f64).min(0.9));
    let corners = [
        (SeriesLabelPosition::UpperRight, 1.0 - w, 1.0 - h),
        (SeriesLabelPosition::UpperLeft, 0.0, 1.0 - h),
        (SeriesLabelPosition::LowerRight, 1.0 - w, 0.0),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    let mut counts = [0usize; 4];
    let (dx, dy) = (
        (x1 - x0).max(f64::MIN_POSITIVE),
        (y1 - y0).max(f64::MIN_POSITIVE),
    );
    for series in pts {
        let samples = series.windows(2).flat_map(|s| {
            (0..16).map(move |k| {
                let t = k as f64 / 16.0;
                (
                    s[0].0 + t * (s[1].0 - s[0].0),
                    s[0].1 + t * (s[1].1 - s[0].1),
                )
            })
        });
        for (x, y) in series.iter().copied().chain(samples) {
            let (u, v) = ((x - x0) / dx, (y - y0) / dy);
            for (c, &(_, cu, cv)) in counts.iter_mut().zip(&corners) {
                if u >= cu && u <= cu + w && v >= cv && v <= cv + h {
                    *c += 1;
                }
            }
        }
    }
    let best = (0..4).min_by_key(|&k| (counts[k], k)).unwrap_or(0);
    corners
        .into_iter()
        .nth(best)
        .map_or(SeriesLabelPosition::UpperRight, |c| c.0)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let pts: Vec<Vec<(f64, f64)>> = panel
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter_map(|&p| transform(panel, p))
                .collect()
        })
        .collect();
    let (x0, x1) = range_of(pts.iter().flatten().map(|p| p.0), 0.02);
    let (y0, y1) = range_of(pts.iter().flatten().map(|p| p.1), 0.05);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    let decades_x = (x1 - x0).ceil() as usize;
    let decades_y = (y1 - y0).ceil() as usize;
    let x_fmt = |v: &f64| {
        if panel.log_x {
            log_label(*v)
        } else {
            lin_label(*v)
        }
    };
    let y_fmt = |v: &f64| {
        if panel.log_y {
            log_label(*v)
        } else {
            lin_label(*v)
        }
    };
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .x_labels(if panel.log_x && decades_x >= 2 {
            (decades_x + 1).clamp(3, 10)
        } else {
            8
        })
        .y_labels(if panel.log_y && decades_y >= 2 {
            (decades_y + 1).clamp(3, 10)
        } else {
            8
        })
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(205, 205, 205))
        .draw()
        .map_err(|e| e.to_string())?;
    let pts_for_legend = pts.clone();
    for (s, points) in panel.series.iter().zip(pts) {
        let color = PALETTE[s.color % PALETTE.len()];
        let style = color.stroke_width(2);
        let anno = match s.mark {
            Mark::Line => chart
                .draw_series(LineSeries::new(points, style))
                .map_err(|e| e.to_string())?,
            Mark::Dashed => chart
                .draw_series(DashedLineSeries::new(points, 8, 5, style))
                .map_err(|e| e.to_string())?,
            Mark::Points => chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 4, color.filled())),
                )
                .map_err(|e| e.to_string())?,
            Mark::LinePoints => {
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(1)))
                    .map_err(|e| e.to_string())?;
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 4, color.filled())),
                    )
                    .map_err(|e| e.to_string())?
            }
        };
        if !s.name.is_empty() {
            let mark = s.mark;
            anno.label(&s.name).legend(move |(x, y)| {
                let el: DynElement<'static, _, _> = match mark {
                    Mark::Points => Circle::new((x + 10, y), 4, color.filled()).into_dyn(),
                    _ => PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                        .into_dyn(),
                };
                el
            });
        }
    }
    if panel.series.iter().any(|s| !s.name.is_empty()) {
        chart
            .configure_series_labels()
            .label_font(("sans-serif", 15))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(120, 120, 120))
            .position(legend_corner(&pts_for_legend, (x0, x1), (y0, y1)))
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Draws `panels` on a grid of `rows × cols` into a PNG of `width × height` pixels.
///
/// # Errors
/// [`CliError::NoFont`], [`CliError::Plot`].
pub fn line_chart(
    path: &Path,
    size: (u32, u32),
    grid: (usize, usize),
    panels: &[Panel],
) -> Result<(), CliError> {
    ensure_font()?;
    let err = plot_error(path);
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let areas = root.split_evenly(grid);
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel).map_err(&err)?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Colour scale of a heatmap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Blue (negative) – white – red (positive), symmetric around 0, saturated at ±`limit`.
    Diverging {
        /// Saturation value (> 0).
        limit: f64,
    },
    /// Viridis on log₁₀ of the value in [lo, hi]; zeros are grey.
    LogSequential {
        /// Smallest positive value of the scale.
        lo: f64,
        /// Largest value of the scale.
        hi: f64,
    },
}

/// The diverging scale of a precision matrix: saturated at the largest off-diagonal
/// magnitude (the diagonal, much larger, saturates), or at the largest entry if diagonal.
pub fn precision_scale(a: ArrayView2<'_, f64>) -> Scale {
    let mut off = 0.0_f64;
    let mut all = 0.0_f64;
    for ((i, j), v) in a.indexed_iter() {
        all = all.max(v.abs());
        if i != j {
            off = off.max(v.abs());
        }
    }
    let limit = if off > 0.0 { off } else { all.max(1e-300) };
    Scale::Diverging { limit }
}

/// The log scale of penalty matrices: over their positive entries.
pub fn penalty_scale<'a>(mats: impl IntoIterator<Item = ArrayView2<'a, f64>>) -> Scale {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0_f64);
    for m in mats {
        for &v in m.iter().filter(|v| **v > 0.0 && v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if !lo.is_finite() {
        return Scale::LogSequential { lo: 1e-3, hi: 1.0 };
    }
    if hi / lo < 1.0001 {
        lo /= 2.0;
        hi *= 2.0;
    }
    Scale::LogSequential { lo, hi }
}

const VIRIDIS: [(f64, f64, f64); 6] = [
    (68.0, 1.0, 84.0),
    (65.0, 68.0, 135.0),
    (42.0, 120.0, 142.0),
    (34.0, 168.0, 132.0),
    (122.0, 209.0, 81.0),
    (253.0, 231.0, 37.0),
];

fn viridis(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f64;
    let k = (t.floor() as usize).min(VIRIDIS.len() - 2);
    let f = t - k as f64;
    let (a, b) = (VIRIDIS[k], VIRIDIS[k + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Scale {
    /// The colour of a value.
    pub fn color(&self, v: f64) -> RGBColor {
        match *self {
            Scale::Diverging { limit } => {
                let t = (v / limit).clamp(-1.0, 1.0);
                let fade = |c: f64, s: f64| (255.0 + (c - 255.0) * s).round() as u8;
                if t >= 0.0 {
                    RGBColor(fade(178.0, t), fade(24.0, t), fade(43.0, t))
                } else {
                    RGBColor(fade(33.0, -t), fade(102.0, -t), fade(172.0, -t))
                }
            }
            Scale::LogSequential { lo, hi } => {
                if !(v > 0.0) {
                    RGBColor(200, 200, 200)
                } else {
                    viridis((v.log10() - lo.log10()) / (hi.log10() - lo.log10()))
                }
            }
        }
    }

    /// The colour bar's axis range (value units, log₁₀ for the log scale).
    fn axis(&self) -> (f64, f64) {
        match *self {
            Scale::Diverging { limit } => (-limit, limit),
            Scale::LogSequential { lo, hi } => (lo.log10(), hi.log10()),
        }
    }

    fn value_at(&self, a: f64) -> f64 {
        match self {
            Scale::Diverging { .. } => a,
            Scale::LogSequential { .. } => 10f64.powf(a),
        }
    }
}

/// One heatmap panel.
#[derive(Debug, Clone)]
pub struct Heatmap<'a> {
    /// Caption.
    pub title: String,
    /// The matrix (drawn with row 0 at the top).
    pub matrix: ArrayView2<'a, f64>,
    /// Its colour scale.
    pub scale: Scale,
    /// Colour bar label.
    pub bar_label: String,
}

/// Shrinks a matrix larger than `max` rows to at most `max × max` blocks, keeping in each
/// block the entry of largest magnitude (so isolated edges stay visible).
fn downsample(a: ArrayView2<'_, f64>, max: usize) -> Array2<f64> {
    let (r, c) = a.dim();
    if r <= max && c <= max {
        return a.to_owned();
    }
    let br = r.div_ceil(max);
    let bc = c.div_ceil(max);
    let (nr, nc) = (r.div_ceil(br), c.div_ceil(bc));
    let mut out = Array2::zeros((nr, nc));
    for ((i, j), &v) in a.indexed_iter() {
        let cell = &mut out[[i / br, j / bc]];
        if v.abs() > f64::abs(*cell) {
            *cell = v;
        }
    }
    out
}

fn draw_heatmap<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    h: &Heatmap<'_>,
) -> Result<(), String> {
    let (w, _) = area.dim_in_pixel();
    let (left, right) = area.split_horizontally(w.saturating_sub(105));
    let m = downsample(h.matrix, 250);
    let (rows, cols) = m.dim();
    let (p_rows, p_cols) = h.matrix.dim();
    let (sr, sc) = (p_rows as f64 / rows as f64, p_cols as f64 / cols as f64);
    let mut chart = ChartBuilder::on(&left)
        .caption(&h.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(46)
        .build_cartesian_2d(0.0..p_cols as f64, 0.0..p_rows as f64)
        .map_err(|e| e.to_string())?;
    let n_rows = p_rows as f64;
    let y_fmt = move |v: &f64| format!("{}", (n_rows - v).round() as i64);
    let x_fmt = |v: &f64| format!("{}", v.round() as i64);
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("column l")
        .y_desc("row k")
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(m.indexed_iter().map(|((i, j), &v)| {
            let y_top = n_rows - i as f64 * sr;
            Rectangle::new(
                [(j as f64 * sc, y_top), ((j + 1) as f64 * sc, y_top - sr)],
                h.scale.color(v).filled(),
            )
        }))
        .map_err(|e| e.to_string())?;

    // Colour bar.
    let (a0, a1) = h.scale.axis();
    let mut bar = ChartBuilder::on(&right)
        .margin_top(40)
        .margin_bottom(46)
        .margin_right(8)
        .y_label_area_size(62)
        .build_cartesian_2d(0.0..1.0, a0..a1)
        .map_err(|e| e.to_string())?;
    let scale = h.scale;
    let bar_fmt = move |v: &f64| match scale {
        Scale::LogSequential { .. } => log_label(*v),
        Scale::Diverging { .. } => lin_label(*v),
    };
    bar.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(&h.bar_label)
        .y_labels(7)
        .y_label_formatter(&bar_fmt)
        .label_style(("sans-serif", 13))
        .axis_desc_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    let steps = 120;
    bar.draw_series((0..steps).map(|k| {
        let t0 = a0 + (a1 - a0) * k as f64 / steps as f64;
        let t1 = a0 + (a1 - a0) * (k + 1) as f64 / steps as f64;
        let mid = 0.5 * (t0 + t1);
        Rectangle::new(
            [(0.0, t0), (1.0, t1)],
            scale.color(scale.value_at(mid)).filled(),
        )
    }))
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Draws heatmaps side by side (one row) into a PNG, each panel `panel_size` pixels.
///
/// # Errors
/// [`CliError::NoFont`], [`CliError::Plot`].
pub fn heatmaps(path: &Path, panel_size: (u32, u32), maps: &[Heatmap<'_>]) -> Result<(), CliError> {
    ensure_font()?;
    let err = plot_error(path);
    let n = maps.len().max(1);
    let root =
        BitMapBackend::new(path, (panel_size.0 * n as u32, panel_size.1)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let areas = root.split_evenly((1, n));
    for (area, h) in areas.iter().zip(maps) {
        draw_heatmap(area, h).map_err(&err)?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_scales() {
        assert_eq!(log_label(-3.0), "1e-3");
        assert_eq!(log_label(0.0), "1");
        assert_eq!(lin_label(0.25), "0.25");
        assert_eq!(log_label(50.1f64.log10()), "50");
        assert_eq!(log_label(0.251f64.log10()), "0.25");
        let s = Scale::LogSequential { lo: 1e-3, hi: 1.0 };
        assert_eq!(s.color(0.0), RGBColor(200, 200, 200));
        assert_eq!(s.color(1e-3), viridis(0.0));
        let d = Scale::Diverging { limit: 1.0 };
        assert_eq!(d.color(0.0), RGBColor(255, 255, 255));
        let m = Array2::from_shape_fn((7, 7), |(i, j)| (i * 7 + j) as f64);
        let small = downsample(m.view(), 3);
        assert_eq!(small.dim(), (3, 3));
        assert!((small[[2, 2]] - 48.0).abs() < 1e-12);
    }
}
