//! The training figure: loss and learning rate by step from `training.log`, with the
//! evaluation points, drawn with plotters into a PNG written beside the card
//! ([`FIGURE_FILE`]). The font is embedded (DejaVu Sans Mono), so the same facts give the same
//! bytes on every machine and `fill` stays idempotent. PNG because the Hub does not render SVG
//! images reliably in model cards.

use std::sync::Once;

use cardfill_facts::{Facts, Value, paths};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// The figure's file name, beside the card.
pub const FIGURE_FILE: &str = "cardfill-training.png";

const FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
const WIDTH: u32 = 800;
const HEIGHT: u32 = 560;

/// (step, value) series of the log: training loss, evaluation loss, learning rate.
struct Series {
    loss: Vec<(f64, f64)>,
    eval: Vec<(f64, f64)>,
    lr: Vec<(f64, f64)>,
}

fn series(f: &Facts) -> Option<Series> {
    let log = f.value(paths::TRAINING_LOG)?.as_array()?;
    let mut s = Series {
        loss: Vec::new(),
        eval: Vec::new(),
        lr: Vec::new(),
    };
    for e in log.iter().filter_map(Value::as_object) {
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
    (s.loss.len() >= 2).then_some(s)
}

/// Whether the facts draw a figure (the card links it only then).
pub fn has_figure(f: &Facts) -> bool {
    series(f).is_some()
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
    let mut buf = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw(&s, &mut buf).ok()?;
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Best);
        let mut w = enc.write_header().ok()?;
        w.write_image_data(&buf).ok()?;
    }
    Some(out)
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

fn draw<'a>(s: &Series, buf: &'a mut [u8]) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let root = BitMapBackend::with_buffer(buf, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(HEIGHT * 3 / 5);
    let steps = range(&[&s.loss, &s.eval, &s.lr], |p| p.0);
    let loss = range(&[&s.loss, &s.eval], |p| p.1);
    let mut chart =
        chart_on(&top, "Loss by step").build_cartesian_2d(steps.0..steps.1, loss.0..loss.1)?;
    chart
        .configure_mesh()
        .x_desc("step")
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
            .y_desc("learning rate")
            .y_label_formatter(&|v| format!("{v:.1e}"))
            .light_line_style(WHITE)
            .label_style(("sans-serif", 12))
            .draw()?;
        chart.draw_series(LineSeries::new(s.lr.iter().copied(), GREEN.stroke_width(2)))?;
    }
    root.present()?;
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
}
