//! Benchmark answers for people and programs: tables for a terminal ([`table`]), SVG charts
//! ([`plot`] in the colours of [`palette`]; a facility's before/after in [`effect_plot`], a
//! practice effect in [`forest_plot`]), and JSON and CSV ([`export`]; an intervention's in
//! [`intervention_table`]). Each takes an API message and returns text or writes a file; none
//! of them calls anything.

pub mod effect_plot;
pub mod export;
pub mod forest_plot;
pub mod intervention_table;
pub mod palette;
pub mod plot;
pub mod table;

/// `text` safe inside XML or HTML text and attribute values (charts and reports).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `12345` as `12,345` (tables and plot axes).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
