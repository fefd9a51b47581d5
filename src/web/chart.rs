//! Charts drawn on the server as inline SVG: a series of (time, number) points as a
//! line with its area, min and max on the left, the time span below, and each point's
//! value and time on hover (an SVG `<title>`). No script, no library.

use std::fmt::Write as _;

use crate::domain::ids::Timestamp;

use super::view::When;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
/// Room for the value labels on the left and the time labels below.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;
const RIGHT: f64 = 8.0;

/// Points marked (with a hover title) at most; beyond this only the line is drawn.
const MAX_MARKED: usize = 300;

/// The SVG of `points` (oldest first), or `None` if there are none. `unit` follows
/// every value shown ("ms", "" …). Every text is escaped.
pub fn line_chart(points: &[(Timestamp, f64)], unit: &str, now: Timestamp) -> Option<String> {
    let (first, last) = (points.first()?, points.last()?);
    let (min, max) = points.iter().fold(
        (f64::INFINITY, f64::NEG_INFINITY),
        |(low, high), (_, value)| (low.min(*value), high.max(*value)),
    );
    // A flat series still gets a band to sit in.
    let (low, high) = if (max - min).abs() < f64::EPSILON {
        (min - 1.0, max + 1.0)
    } else {
        let pad = (max - min) * 0.08;
        (min - pad, max + pad)
    };
    let start = first.0.as_millis() as f64;
    let span = (last.0.as_millis() as f64 - start).max(1.0);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let x = |at: Timestamp| {
        if points.len() == 1 {
            LEFT + plot_width / 2.0
        } else {
            LEFT + (at.as_millis() as f64 - start) / span * plot_width
        }
    };
    let y = |value: f64| TOP + (high - value) / (high - low) * plot_height;

    let mut svg = String::with_capacity(4096 + points.len() * 96);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="chart of {count} values">"#,
        count = points.len()
    );
    // Grid: the top, middle and bottom values.
    for fraction in [0.0, 0.5, 1.0] {
        let value = max - (max - min) * fraction;
        let line_y = y(value);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{right}" y1="{line_y:.1}" y2="{line_y:.1}"/><text class="axis" x="{label_x}" y="{text_y:.1}" text-anchor="end">{label}</text>"#,
            right = WIDTH - RIGHT,
            label_x = LEFT - 6.0,
            text_y = line_y + 4.0,
            label = escape(&number(value, unit)),
        );
    }
    let mut line = String::with_capacity(points.len() * 16);
    for (index, (at, value)) in points.iter().enumerate() {
        let _ = write!(
            line,
            "{}{:.1},{:.1}",
            if index == 0 { "" } else { " " },
            x(*at),
            y(*value)
        );
    }
    let base = TOP + plot_height;
    let _ = write!(
        svg,
        r#"<polygon class="area" points="{first_x:.1},{base:.1} {line} {last_x:.1},{base:.1}"/><polyline class="line" points="{line}"/>"#,
        first_x = x(first.0),
        last_x = x(last.0),
    );
    let step = points.len().div_ceil(MAX_MARKED).max(1);
    for (at, value) in points.iter().step_by(step) {
        let when = When::new(*at, now);
        let _ = write!(
            svg,
            r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="2.5"><title>{} · {}</title></circle>"#,
            x(*at),
            y(*value),
            escape(&number(*value, unit)),
            escape(&when.exact),
        );
    }
    let _ = write!(
        svg,
        r#"<text class="axis" x="{LEFT}" y="{HEIGHT}" dy="-4">{from}</text><text class="axis" x="{right}" y="{HEIGHT}" dy="-4" text-anchor="end">{to}</text></svg>"#,
        right = WIDTH - RIGHT,
        from = escape(&When::new(first.0, now).relative),
        to = escape(&When::new(last.0, now).relative),
    );
    Some(svg)
}

/// A value with up to 3 significant decimals and its unit.
fn number(value: f64, unit: &str) -> String {
    let text = if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else if value.abs() >= 100.0 {
        format!("{value:.1}")
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    if unit.is_empty() {
        text
    } else {
        format!("{text} {unit}")
    }
}

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_has_a_line_a_point_per_value_and_nothing_unescaped() {
        let at = |s: i64| Timestamp::from_millis(1_800_000_000_000 + s * 1000);
        let points = [(at(0), 1.5), (at(60), 3.0), (at(120), 2.25)];
        let svg = line_chart(&points, "<ms>", at(180)).expect("a chart");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(!svg.contains("<ms>"), "the unit is escaped: {svg}");
        assert!(svg.contains("&lt;ms&gt;"));
        assert!(line_chart(&[], "", at(0)).is_none());
        let flat = line_chart(&[(at(0), 5.0)], "", at(0)).expect("one point");
        assert!(flat.contains("<circle"));
        assert!(!flat.contains("NaN"));
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(number(42.0, ""), "42");
        assert_eq!(number(1.25, "s"), "1.25 s");
        assert_eq!(number(1234.56, ""), "1234.6");
        assert_eq!(number(0.1, ""), "0.1");
    }
}
