//! The colours of every chart and report, chosen so text and lines stay legible: each colour
//! reaches WCAG AA contrast (4.5:1, the bar for normal text) on the paper it is drawn on, and
//! none is the only thing that tells two series apart (line styles and marker shapes do too, so
//! a black-and-white printout reads the same).

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colour(pub u8, pub u8, pub u8);

/// Body text.
pub const INK: Colour = Colour(27, 27, 27);
/// Secondary text: captions, notes.
pub const MUTED: Colour = Colour(77, 77, 77);
/// The page.
pub const PAPER: Colour = Colour(255, 255, 255);
/// Alternate table rows.
pub const STRIPE: Colour = Colour(242, 242, 242);
/// Alarms: beyond 99.8% funnel limits, control limits, signals, failed calls.
pub const ALARM: Colour = Colour(176, 0, 32);
/// Alerts: beyond 95% funnel limits, quartiles.
pub const ALERT: Colour = Colour(163, 92, 0);
/// Facility points and rate series.
pub const POINT: Colour = Colour(31, 78, 156);
/// Secondary lines: over-dispersion-adjusted limits, outer percentiles, withheld months.
pub const GREY: Colour = Colour(102, 102, 102);
/// The background of a banner that says the report is partial.
pub const BANNER: Colour = Colour(253, 236, 234);
/// Links inside the report.
pub const LINK: Colour = Colour(26, 77, 143);

/// Every (foreground, background) pair the report and its charts draw, for the contrast check.
pub const PAIRS: &[(&str, Colour, Colour)] = &[
    ("ink on paper", INK, PAPER),
    ("muted on paper", MUTED, PAPER),
    ("ink on stripe", INK, STRIPE),
    ("muted on stripe", MUTED, STRIPE),
    ("alarm on paper", ALARM, PAPER),
    ("alarm on stripe", ALARM, STRIPE),
    ("alarm on banner", ALARM, BANNER),
    ("ink on banner", INK, BANNER),
    ("alert on paper", ALERT, PAPER),
    ("point on paper", POINT, PAPER),
    ("grey on paper", GREY, PAPER),
    ("link on paper", LINK, PAPER),
];

impl Colour {
    /// `#rrggbb`, for CSS.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// The plotters colour.
    pub fn rgb(self) -> plotters::style::RGBColor {
        plotters::style::RGBColor(self.0, self.1, self.2)
    }

    /// WCAG 2 relative luminance.
    fn luminance(self) -> f64 {
        let linear = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * linear(self.0) + 0.7152 * linear(self.1) + 0.0722 * linear(self.2)
    }
}

/// WCAG 2 contrast ratio of two colours (1 to 21).
pub fn contrast(a: Colour, b: Colour) -> f64 {
    let (la, lb) = (a.luminance(), b.luminance());
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_matches_the_wcag_reference_points() {
        assert!((contrast(Colour(0, 0, 0), PAPER) - 21.0).abs() < 1e-9);
        assert!((contrast(PAPER, PAPER) - 1.0).abs() < 1e-9);
        // #767676 on white is the classic 4.54:1 just-AA grey.
        assert!((contrast(Colour(118, 118, 118), PAPER) - 4.54).abs() < 0.01);
    }

    #[test]
    fn every_pair_drawn_reaches_aa_for_normal_text() {
        for (what, fg, bg) in PAIRS {
            let ratio = contrast(*fg, *bg);
            assert!(ratio >= 4.5, "{what}: {ratio:.2}:1 is below 4.5:1");
        }
    }
}
