//! The HTML pieces sections are built from: escaped text, tables with header cells, and a
//! figure with the table of its numbers beside it (the chart's text alternative).

pub use crate::render::escape as esc;

/// A table: a caption, column headings, rows of plain text (escaped when written).
#[derive(Debug, Clone, Default)]
pub struct Table {
    caption: String,
    columns: Vec<(String, bool)>,
    rows: Vec<(Vec<String>, bool)>,
}

impl Table {
    /// An empty table captioned `caption`.
    pub fn new(caption: impl Into<String>) -> Self {
        Self {
            caption: caption.into(),
            ..Self::default()
        }
    }

    /// A text column.
    pub fn text(mut self, title: &str) -> Self {
        self.columns.push((title.to_string(), false));
        self
    }

    /// A right-aligned number column.
    pub fn number(mut self, title: &str) -> Self {
        self.columns.push((title.to_string(), true));
        self
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push((cells, false));
    }

    /// Adds a row set in bold (the reader's own facility).
    pub fn emphasised_row(&mut self, cells: Vec<String>) {
        self.rows.push((cells, true));
    }

    /// The table as HTML, with `class`; the first cell of a row is its row header.
    pub fn html(&self, class: &str) -> String {
        let mut out = format!(
            "<table class=\"{class}\"><caption>{}</caption><thead><tr>",
            esc(&self.caption)
        );
        for (title, number) in &self.columns {
            out += &format!(
                "<th scope=\"col\"{}>{}</th>",
                if *number { " class=\"num\"" } else { "" },
                esc(title)
            );
        }
        out += "</tr></thead><tbody>";
        for (cells, emphasised) in &self.rows {
            out += if *emphasised {
                "<tr class=\"you\">"
            } else {
                "<tr>"
            };
            for (i, cell) in cells.iter().enumerate() {
                let number = self.columns.get(i).is_some_and(|(_, n)| *n);
                let (open, close) = if i == 0 {
                    ("<th scope=\"row\"", "</th>")
                } else {
                    ("<td", "</td>")
                };
                out += &format!(
                    "{open}{}>{}{close}",
                    if number { " class=\"num\"" } else { "" },
                    esc(cell)
                );
            }
            out += "</tr>";
        }
        out + "</tbody></table>"
    }
}

/// A chart with its caption and, beside it, the table of the numbers it draws. When the chart
/// could not be drawn, the table stands alone with the reason.
pub fn figure(svg: anyhow::Result<String>, caption: &str, table: &Table) -> String {
    let chart = match svg {
        Ok(svg) => format!(
            "<figure>{}<figcaption>{}</figcaption></figure>",
            inline_svg(&svg),
            esc(caption)
        ),
        Err(e) => format!(
            "<p class=\"note\">No chart: {}.</p>",
            esc(&format!("{e:#}"))
        ),
    };
    // A short table fits beside its chart on a wide screen; a long one goes below it.
    let layout = if table.columns.len() <= 3 {
        "figure-pair beside"
    } else {
        "figure-pair"
    };
    format!(
        "<div class=\"{layout}\">{chart}{}</div>",
        table.html("figure-data")
    )
}

/// An SVG document as an element inside HTML: without its fixed size (the page's CSS sizes it)
/// and without the XML namespace declaration (HTML's parser supplies it), so the report holds
/// no URL at all.
pub fn inline_svg(svg: &str) -> String {
    let Some(start) = svg.find("<svg") else {
        return String::new();
    };
    let Some(end) = svg[start..].find('>').map(|e| start + e) else {
        return String::new();
    };
    let mut tag = svg[start..end].to_string();
    for attribute in ["width", "height", "xmlns"] {
        let needle = format!(" {attribute}=\"");
        if let Some(at) = tag.find(&needle)
            && let Some(close) = tag[at + needle.len()..].find('"')
        {
            tag.replace_range(at..at + needle.len() + close + 1, "");
        }
    }
    format!("{tag}{}", &svg[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_escape_text_and_mark_number_columns() {
        let mut t = Table::new("Rates <all>").text("facility").number("rate");
        t.row(vec!["peer-01".into(), "3.10".into()]);
        t.emphasised_row(vec!["a&b".into(), "4.00".into()]);
        let html = t.html("x");
        assert!(
            html.contains("<caption>Rates &lt;all&gt;</caption>"),
            "{html}"
        );
        assert!(
            html.contains("<th scope=\"col\" class=\"num\">rate</th>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<tr class=\"you\"><th scope=\"row\">a&amp;b</th><td class=\"num\">4.00</td>"
            ),
            "{html}"
        );
    }

    #[test]
    fn inline_svg_drops_size_and_namespace() {
        let svg = "<svg width=\"900\" height=\"560\" viewBox=\"0 0 900 560\" \
                   xmlns=\"http://www.w3.org/2000/svg\" role=\"img\"><title>t</title></svg>";
        assert_eq!(
            inline_svg(svg),
            "<svg viewBox=\"0 0 900 560\" role=\"img\"><title>t</title></svg>"
        );
    }
}
