//! Badge images: a flat two-part badge in SVG ("label | message", as shields.io draws
//! them) and the shields.io endpoint JSON, for a state or an uptime.

use crate::domain::machine::Status;

use super::chart::escape;

/// What a badge says and in which colour.
#[derive(Clone, Debug, PartialEq)]
pub struct BadgeFace {
    pub label: String,
    pub message: String,
    /// The shields.io colour name; [`hex`] gives the SVG's colour.
    pub color: &'static str,
}

impl BadgeFace {
    /// A badge of a state; `None`: no monitor to show (a tag nobody has).
    pub fn status(label: String, status: Option<Status>) -> Self {
        let (message, color) = match status {
            Some(Status::Up) => ("up", "brightgreen"),
            Some(Status::Down) => ("down", "red"),
            Some(Status::Pending) => ("pending", "yellow"),
            Some(Status::Paused) => ("paused", "lightgrey"),
            Some(Status::Unknown) => ("unknown", "lightgrey"),
            None => ("no monitors", "lightgrey"),
        };
        Self {
            label,
            message: message.to_owned(),
            color,
        }
    }

    /// A badge of an uptime ratio (0 to 1), or of no data.
    pub fn uptime(label: String, ratio: Option<f64>, percent: String) -> Self {
        let color = match ratio {
            None => "lightgrey",
            Some(ratio) if ratio >= 0.999 => "brightgreen",
            Some(ratio) if ratio >= 0.99 => "green",
            Some(ratio) if ratio >= 0.95 => "yellow",
            Some(ratio) if ratio >= 0.9 => "orange",
            Some(_) => "red",
        };
        Self {
            label,
            message: if ratio.is_some() {
                percent
            } else {
                "no data".to_owned()
            },
            color,
        }
    }

    /// The shields.io endpoint JSON (`schemaVersion` 1).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "schemaVersion": 1,
            "label": self.label,
            "message": self.message,
            "color": self.color,
        })
    }

    /// The badge as an SVG image.
    pub fn svg(&self) -> String {
        let label_width = text_width(&self.label) + 10;
        let message_width = text_width(&self.message) + 10;
        let width = label_width + message_width;
        let label = escape(&self.label);
        let message = escape(&self.message);
        let color = hex(self.color);
        // Text is drawn at ten times the size, then scaled: what shields.io does to
        // keep letter spacing right at small sizes.
        let label_x = label_width * 5;
        let message_x = label_width * 10 + message_width * 5;
        let label_length = (label_width - 10) * 10;
        let message_length = (message_width - 10) * 10;
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" aria-label="{label}: {message}"><title>{label}: {message}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{label_width}" height="20" fill="#555"/><rect x="{label_width}" width="{message_width}" height="20" fill="{color}"/><rect width="{width}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110"><text aria-hidden="true" x="{label_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{label_length}">{label}</text><text x="{label_x}" y="140" transform="scale(.1)" fill="#fff" textLength="{label_length}">{label}</text><text aria-hidden="true" x="{message_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="{message_length}">{message}</text><text x="{message_x}" y="140" transform="scale(.1)" fill="#fff" textLength="{message_length}">{message}</text></g></svg>"##
        )
    }
}

/// The SVG colour of a shields.io colour name.
pub fn hex(color: &str) -> &'static str {
    match color {
        "brightgreen" => "#4c1",
        "green" => "#97ca00",
        "yellow" => "#dfb317",
        "orange" => "#fe7d37",
        "red" => "#e05d44",
        _ => "#9f9f9f",
    }
}

/// About how wide `text` is in 11px Verdana, in pixels.
fn text_width(text: &str) -> u32 {
    let tenths: u32 = text
        .chars()
        .map(|c| match c {
            'i' | 'l' | 'j' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 35,
            'f' | 't' | 'r' | 'I' | ' ' | '(' | ')' | '[' | ']' | '-' => 45,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 100,
            'A'..='Z' => 75,
            '0'..='9' => 70,
            _ => 65,
        })
        .sum();
    tenths.div_ceil(10).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_has_its_colour_and_word() {
        for (status, message, color) in [
            (Some(Status::Up), "up", "brightgreen"),
            (Some(Status::Down), "down", "red"),
            (Some(Status::Pending), "pending", "yellow"),
            (Some(Status::Paused), "paused", "lightgrey"),
            (None, "no monitors", "lightgrey"),
        ] {
            let face = BadgeFace::status("backup".to_owned(), status);
            assert_eq!((face.message.as_str(), face.color), (message, color));
            let svg = face.svg();
            assert!(svg.contains(&format!(r#"fill="{}""#, hex(color))), "{svg}");
            assert!(svg.contains(&format!(">{message}</text>")), "{svg}");
            assert_eq!(face.json()["schemaVersion"], 1);
        }
    }

    #[test]
    fn labels_are_escaped() {
        let svg = BadgeFace::status("<a&b>".to_owned(), Some(Status::Up)).svg();
        assert!(svg.contains("&lt;a&amp;b&gt;"));
        assert!(!svg.contains("<a&b>"));
    }

    #[test]
    fn uptime_colours() {
        let face = |ratio| BadgeFace::uptime("up".to_owned(), ratio, "x".to_owned()).color;
        assert_eq!(face(Some(1.0)), "brightgreen");
        assert_eq!(face(Some(0.995)), "green");
        assert_eq!(face(Some(0.96)), "yellow");
        assert_eq!(face(Some(0.5)), "red");
        assert_eq!(face(None), "lightgrey");
    }
}
