//! The training figure: loss and learning rate by step from `training.log`, with the
//! evaluation points, and GPU power over time from the run records' samples (`run.power`),
//! drawn with plotters into a PNG written beside the card ([`FIGURE_FILE`]).
//!
//! The font is embedded, so the same facts give the same bytes on every machine and `fill`
//! stays idempotent: DejaVu Sans subset to ASCII (fontTools `pyftsubset`, 14 KB). A
//! proportional face, because plotters 0.3 draws glyphs without their left side bearing,
//! which leaves gaps after narrow glyphs of a monospace face. PNG because the Hub does not
//! render SVG images reliably in model cards.

use std::sync::Once;

use cardfill_facts::{Facts, Value, paths};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// The figure's file name, beside the card.
pub const FIGURE_FILE: &str = "cardfill-training.png";

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-ascii.ttf");
const WIDTH: u32 = 800;
/// Height of the loss and learning-rate panels.
const HEIGHT: u32 = 560;
/// Height of the power panel, below them.
const POWER_HEIGHT: u32 = 260;
/// More GPUs than this are drawn as one line: their sum.
const POWER_LINES_MAX: usize = 8;

/// One power line: legend label and (seconds since start, watts).
struct PowerLine {
    label: String,
    points: Vec<(f64, f64)>,
}

/// What the figure draws: (step, value) series of the log (training loss, evaluation loss,
/// learning rate) and the power lines.
struct Series {
    loss: Vec<(f64, f64)>,
    eval: Vec<(f64, f64)>,
    lr: Vec<(f64, f64)>,
    power: Vec<PowerLine>,
}

impl Series {
    /// The loss panels are drawn (two training-loss points at least).
    fn has_loss(&self) -> bool {
        self.loss.len() >= 2
    }
}

fn series(f: &Facts) -> Option<Series> {
    let mut s = Series {
        loss: Vec::new(),
        eval: Vec::new(),
        lr: Vec::new(),
        power: power_lines(f),
    };
    let log = f.value(paths::TRAINING_LOG).and_then(Value::as_array);
    for e in log.into_iter().flatten().filter_map(Value::as_object) {
        let Some(step) = e.get("step").and_then(Value::as_f64) else {
            continue;
        };
        let num = |k: &str| e.get(k).and_then(Value::as_f64).filter(|v| v.is_finite());
        if let Some(v) = num("loss") {
            s.loss.push((step, v));
        }
        if let Some(v) = num("eval_loss") {
            s.eval.push((step, v));
        }
        if let Some(v) = num("learning_rate") {
            s.lr.push((step, v));
        }
    }
    (s.has_loss() || !s.power.is_empty()).then_some(s)
}

/// The power lines of `run.power`: one per GPU with two samples at least, or their sum when
/// there are more than [`POWER_LINES_MAX`].
fn power_lines(f: &Facts) -> Vec<PowerLine> {
    let list = f.value(paths::RUN_POWER).and_then(Value::as_array);
    let lines: Vec<PowerLine> = list
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let label = e.get("gpu").and_then(Value::as_str)?.to_owned();
            let mut points: Vec<(f64, f64)> = e
                .get("samples")
                .and_then(Value::as_array)?
                .iter()
                .filter_map(|p| {
                    let t = p.get(0).and_then(Value::as_f64)?;
                    let w = p.get(1).and_then(Value::as_f64)?;
                    (t.is_finite() && w.is_finite()).then_some((t, w))
                })
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            (points.len() >= 2).then_some(PowerLine { label, points })
        })
        .collect();
    if lines.len() <= POWER_LINES_MAX {
        return lines;
    }
    summed(&lines).into_iter().collect()
}

/// The sum of `lines` where every one has samples (from the latest first sample to the
/// earliest last one), at each of their sample times, each line interpolated linearly.
fn summed(lines: &[PowerLine]) -> Option<PowerLine> {
    let from = lines.iter().filter_map(|l| l.points.first()).map(|p| p.0);
    let from = from.fold(f64::NEG_INFINITY, f64::max);
    let to = lines.iter().filter_map(|l| l.points.last()).map(|p| p.0);
    let to = to.fold(f64::INFINITY, f64::min);
    let mut times: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .filter(|t| (from..=to).contains(t))
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    let points: Vec<(f64, f64)> = times
        .iter()
        .map(|&t| (t, lines.iter().map(|l| at(&l.points, t)).sum()))
        .collect();
    (points.len() >= 2).then(|| PowerLine {
        label: format!("all {} GPUs (sum)", lines.len()),
        points,
    })
}

/// `points` (sorted by time) interpolated linearly at `t`, within their range.
fn at(points: &[(f64, f64)], t: f64) -> f64 {
    points
        .windows(2)
        .find(|w| w[0].0 <= t && t <= w[1].0)
        .map(|w| {
            let span = w[1].0 - w[0].0;
            if span > 0.0 {
                w[0].1 + (w[1].1 - w[0].1) * (t - w[0].0) / span
            } else {
                w[0].1
            }
        })
        .or_else(|| points.last().map(|p| p.1))
        .unwrap_or(0.0)
}

/// Whether the facts draw a figure (the card links it only then).
pub fn has_figure(f: &Facts) -> bool {
    series(f).is_some()
}

/// What the figure shows: `(loss and learning rate, GPU power)`; `None` without a figure.
pub(crate) fn figure_panels(f: &Facts) -> Option<(bool, bool)> {
    series(f).map(|s| (s.has_loss(), !s.power.is_empty()))
}

fn range(points: &[&[(f64, f64)]], pick: fn(&(f64, f64)) -> f64) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for p in points.iter().flat_map(|s| s.iter()) {
        lo = lo.min(pick(p));
        hi = hi.max(pick(p));
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1e-9) * 0.05
    };
    (lo - pad, hi + pad)
}

/// The PNG bytes of the training figure, or `None` when the log has too little to draw.
pub fn training_figure(f: &Facts) -> Option<Vec<u8>> {
    static FONT_ONCE: Once = Once::new();
    let s = series(f)?;
    let mut registered = true;
    FONT_ONCE.call_once(|| {
        registered = register_font("sans-serif", FontStyle::Normal, FONT).is_ok();
    });
    if !registered {
        return None;
    }
    let height =
        if s.has_loss() { HEIGHT } else { 0 } + if s.power.is_empty() { 0 } else { POWER_HEIGHT };
    let mut buf = vec![0u8; (WIDTH * height * 3) as usize];
    draw(&s, &mut buf, height).ok()?;
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH, height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut w = enc.write_header().ok()?;
        w.write_image_data(&buf).ok()?;
    }
    Some(out)
}

/// A step on the axis: whole steps without a decimal point.
fn step_label(v: &f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A chart builder on `area` with the figure's caption font, margin and label areas.
fn chart_on<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(64);
    builder
}

fn draw<'a>(
    s: &Series,
    buf: &'a mut [u8],
    height: u32,
) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let root = BitMapBackend::with_buffer(buf, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (losses, power) = if s.has_loss() {
        root.split_vertically(HEIGHT)
    } else {
        root.split_vertically(0)
    };
    if s.has_loss() {
        draw_loss(s, &losses)?;
    }
    if !s.power.is_empty() {
        draw_power(&s.power, &power)?;
    }
    root.present()?;
    Ok(())
}

/// The loss panel (training loss, validation points) and the learning-rate panel below it.
fn draw_loss<DB: DrawingBackend>(
    s: &Series,
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (top, bottom) = area.split_vertically(HEIGHT * 3 / 5);
    let steps = range(&[&s.loss, &s.eval, &s.lr], |p| p.0);
    let loss = range(&[&s.loss, &s.eval], |p| p.1);
    let mut chart =
        chart_on(&top, "Loss by step").build_cartesian_2d(steps.0..steps.1, loss.0..loss.1)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .x_label_formatter(&step_label)
        .y_desc("loss")
        .light_line_style(WHITE)
        .label_style(("sans-serif", 12))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            s.loss.iter().copied(),
            BLUE.stroke_width(2),
        ))?
        .label("training loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE.stroke_width(2)));
    if !s.eval.is_empty() {
        chart
            .draw_series(s.eval.iter().map(|p| Circle::new(*p, 4, RED.filled())))?
            .label("validation loss")
            .legend(|(x, y)| Circle::new((x + 10, y), 4, RED.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    if s.lr.len() >= 2 {
        let lr = range(&[&s.lr], |p| p.1);
        let mut chart = chart_on(&bottom, "Learning rate by step")
            .build_cartesian_2d(steps.0..steps.1, lr.0..lr.1)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&step_label)
            .y_desc("learning rate")
            .y_label_formatter(&|v| format!("{v:.1e}"))
            .light_line_style(WHITE)
            .label_style(("sans-serif", 12))
            .draw()?;
        chart.draw_series(LineSeries::new(s.lr.iter().copied(), GREEN.stroke_width(2)))?;
    }
    Ok(())
}

/// The power panel: watts against time since the start, one line per GPU (or their sum).
fn draw_power<DB: DrawingBackend>(
    lines: &[PowerLine],
    area: &DrawingArea<DB, plotters::coord::Shift>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let end = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0, f64::max);
    // Seconds, minutes or hours, whichever reads best for the run's length.
    let (unit, per) = if end > 7200.0 {
        ("h", 3600.0)
    } else if end > 120.0 {
        ("min", 60.0)
    } else {
        ("s", 1.0)
    };
    let scaled: Vec<Vec<(f64, f64)>> = lines
        .iter()
        .map(|l| l.points.iter().map(|&(t, w)| (t / per, w)).collect())
        .collect();
    let refs: Vec<&[(f64, f64)]> = scaled.iter().map(Vec::as_slice).collect();
    let time = range(&refs, |p| p.0);
    let (lo, hi) = range(&refs, |p| p.1);
    let watts = (lo.min(0.0), hi);
    let mut chart = chart_on(area, "GPU power over time")
        .build_cartesian_2d(time.0..time.1, watts.0..watts.1)?;
    chart
        .configure_mesh()
        .x_desc(format!("time since start ({unit})"))
        .y_desc("power (W)")
        .light_line_style(WHITE)
        .label_style(("sans-serif", 12))
        .draw()?;
    for (i, (line, points)) in lines.iter().zip(&scaled).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(line.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 12))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardfill_facts::Source;

    fn log_facts() -> Facts {
        let mut f = Facts::new();
        let log: Vec<Value> = (1..=20)
            .map(|i| {
                let step = i * 10;
                let mut e = serde_json::json!({
                    "step": step,
                    "loss": 3.0 / f64::from(i),
                    "learning_rate": 1e-3 * (1.0 - f64::from(i) / 21.0),
                });
                if i % 5 == 0 {
                    e["eval_loss"] = Value::from(3.2 / f64::from(i));
                }
                e
            })
            .collect();
        f.set(paths::TRAINING_LOG, log, Source::derived("test"));
        f
    }

    #[test]
    fn same_facts_give_the_same_png() {
        let f = log_facts();
        let a = training_figure(&f).unwrap();
        let b = training_figure(&f).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[..8], b"\x89PNG\r\n\x1a\n");
        // Not blank: plotted pixels differ from the white background.
        let decoder = png::Decoder::new(std::io::Cursor::new(&a));
        let mut reader = decoder.read_info().unwrap();
        let mut px = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut px).unwrap();
        let blue = px.chunks(3).filter(|c| c[2] > 200 && c[0] < 60).count();
        assert!(blue > 100, "the loss line is drawn ({blue} blue pixels)");
        assert!(training_figure(&Facts::new()).is_none());
    }

    /// `run.power` with `gpus` GPUs, each sampled every 10 s for 10 minutes.
    fn with_power(mut f: Facts, gpus: u32) -> Facts {
        let series: Vec<Value> = (0..gpus)
            .map(|g| {
                let samples: Vec<[f64; 2]> = (0..=60)
                    .map(|i| [f64::from(i) * 10.0, 250.0 + f64::from(g * 10 + i % 5)])
                    .collect();
                serde_json::json!({"gpu": format!("GPU {g}"), "samples": samples})
            })
            .collect();
        f.set(paths::RUN_POWER, series, Source::derived("test"));
        f
    }

    /// Width, height and RGB pixels of a PNG.
    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut px = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut px).unwrap();
        (info.width, info.height, px)
    }

    /// Pixels neither white, grey nor black (plotted lines) in rows `rows`.
    fn coloured(px: &[u8], rows: std::ops::Range<u32>) -> usize {
        let row = WIDTH as usize * 3;
        px[rows.start as usize * row..rows.end as usize * row]
            .chunks(3)
            .filter(|c| c.iter().max().unwrap() - c.iter().min().unwrap() > 60)
            .count()
    }

    #[test]
    fn power_samples_add_a_panel_below_the_loss() {
        let f = with_power(log_facts(), 2);
        let a = training_figure(&f).unwrap();
        assert_eq!(a, training_figure(&f).unwrap(), "same facts, same bytes");
        let (w, h, px) = decode(&a);
        assert_eq!((w, h), (WIDTH, HEIGHT + POWER_HEIGHT));
        assert!(coloured(&px, HEIGHT..h) > 200, "the power lines are drawn");
        assert_eq!(figure_panels(&f), Some((true, true)));

        // Without samples: no panel, the figure as before.
        let (_, h, _) = decode(&training_figure(&log_facts()).unwrap());
        assert_eq!(h, HEIGHT);
        assert_eq!(figure_panels(&log_facts()), Some((true, false)));

        // Power alone draws a figure of its own.
        let power_only = with_power(Facts::new(), 1);
        let (_, h, px) = decode(&training_figure(&power_only).unwrap());
        assert_eq!(h, POWER_HEIGHT);
        assert!(coloured(&px, 0..h) > 100);
        assert_eq!(figure_panels(&power_only), Some((false, true)));
    }

    #[test]
    fn many_gpus_are_drawn_as_their_sum() {
        let lines = power_lines(&with_power(Facts::new(), 12));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].label, "all 12 GPUs (sum)");
        assert_eq!(lines[0].points.len(), 61);
        // Σ (250 + 10 g) over g = 0..12, plus 12 × (i mod 5) at sample i = 0.
        assert_eq!(lines[0].points[0], (0.0, 12.0 * 250.0 + 10.0 * 66.0));
        assert_eq!(power_lines(&with_power(Facts::new(), 8)).len(), 8);
        // Interpolation between samples, clamped to the last one outside.
        assert_eq!(at(&[(0.0, 100.0), (10.0, 200.0)], 2.5), 125.0);
        assert_eq!(at(&[(0.0, 100.0), (10.0, 200.0)], 20.0), 200.0);
    }
}
