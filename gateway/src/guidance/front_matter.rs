//! One guidance file: Markdown with a front matter block of `key: value` lines between `---`
//! lines, the way static-site generators and git-based publishing tools write it.
//!
//! ```text
//! ---
//! version: 2
//! kind: best_practice            # or safety_alert
//! title: Fall-prevention bundle
//! metrics: [falls, falls-with-injury]
//! practice: fall-bundle
//! published: 2026-03-01
//! peer_group: urbanicity=rural   # optional: whom it is for
//! ---
//! Hourly rounding, bed alarms, ...
//! ```
//!
//! `id` defaults to the file name without `.md`. Only this flat subset of YAML is read (no
//! nesting, no multi-line values); anything else is an error naming the file and the line, so a
//! typo is found when the file is published, not when a facility reads it.

use super::target::parse_peer_group;
use psonet_core::pb;

/// Why a guidance file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {why}")]
pub struct FrontMatterError {
    /// The file.
    pub file: String,
    /// What is wrong, naming the line or key.
    pub why: String,
}

/// The values of a list: `[a, b]` or `a, b`.
fn list(value: &str) -> Vec<String> {
    value
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches(['"', '\'']).to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn kind(value: &str) -> Option<pb::GuidanceKind> {
    match value
        .trim()
        .to_lowercase()
        .replace(['-', ' '], "_")
        .as_str()
    {
        "safety_alert" | "alert" => Some(pb::GuidanceKind::SafetyAlert),
        "best_practice" | "practice" => Some(pb::GuidanceKind::BestPractice),
        _ => None,
    }
}

/// Whether `s` is `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && s.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Splits `text` into its front matter lines and its body.
fn split(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("---")?.trim_start_matches('\r');
    let rest = rest.strip_prefix('\n')?;
    let end = rest.find("\n---")?;
    let body = rest[end + 4..].trim_start_matches('-');
    Some((&rest[..end], body.trim_start_matches(['\r', '\n'])))
}

/// Sets one key of `item`; Err says why the value is not usable.
fn set(item: &mut pb::GuidanceItem, key: &str, value: &str) -> Result<(), String> {
    let text = value.trim().trim_matches(['"', '\'']).to_string();
    match key {
        "id" => item.guidance_id = text,
        "version" => {
            item.version = text
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or("version must be a whole number from 1")?
        }
        "kind" => {
            item.kind = kind(&text).ok_or("kind must be safety_alert or best_practice")? as i32
        }
        "title" => item.title = text,
        "metrics" => item.metric_ids = list(value),
        "practice" => item.practice_code = text,
        "peer_group" => item.target_peer_group = Some(parse_peer_group(&text)?),
        "published" if is_date(&text) => item.published = text,
        "published" => return Err("published must be a date, YYYY-MM-DD".into()),
        other => return Err(format!("unknown key {other:?}")),
    }
    Ok(())
}

/// Reads the guidance file `name` (its file name) with contents `text`.
pub fn parse(name: &str, text: &str) -> Result<pb::GuidanceItem, FrontMatterError> {
    let error = |why: String| FrontMatterError {
        file: name.to_string(),
        why,
    };
    let (front, body) = split(text)
        .ok_or_else(|| error("no front matter: the file must start with a line '---'".into()))?;
    let mut item = pb::GuidanceItem {
        guidance_id: name.trim_end_matches(".md").to_string(),
        body_markdown: body.to_string(),
        ..Default::default()
    };
    for (i, line) in front.lines().enumerate() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| error(format!("front matter line {}: expected key: value", i + 2)))?;
        set(&mut item, key.trim(), value).map_err(|why| error(format!("{}: {why}", key.trim())))?;
    }
    let missing: Vec<&str> = [
        ("version", item.version == 0),
        ("kind", item.kind == 0),
        ("title", item.title.is_empty()),
        ("published", item.published.is_empty()),
    ]
    .into_iter()
    .filter_map(|(k, absent)| absent.then_some(k))
    .collect();
    if !missing.is_empty() {
        return Err(error(format!("missing {}", missing.join(", "))));
    }
    if item.kind == pb::GuidanceKind::BestPractice as i32 && item.practice_code.is_empty() {
        return Err(error(
            "a best practice needs its practice code (practice:)".into(),
        ));
    }
    psonet_serve::identity::check_name(&item.guidance_id)
        .map_err(|e| error(format!("id {:?}: {e}", item.guidance_id)))?;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUNDLE: &str = "---\nversion: 2\nkind: best_practice\ntitle: Fall-prevention bundle\n\
        metrics: [falls, falls-with-injury]\npractice: fall-bundle # the code to record\n\
        published: 2026-03-01\n---\n# Why\nHourly rounding.\n";

    #[test]
    fn a_file_reads_into_an_item() {
        let item = parse("fall-bundle.md", BUNDLE).unwrap();
        assert_eq!(item.guidance_id, "fall-bundle");
        assert_eq!(item.version, 2);
        assert_eq!(item.kind, pb::GuidanceKind::BestPractice as i32);
        assert_eq!(item.metric_ids, ["falls", "falls-with-injury"]);
        assert_eq!(item.practice_code, "fall-bundle");
        assert_eq!(item.body_markdown, "# Why\nHourly rounding.\n");
    }

    #[test]
    fn mistakes_name_the_file_and_key() {
        let e = parse("x.md", "no front matter").unwrap_err();
        assert!(e.to_string().starts_with("x.md: no front matter"), "{e}");
        let e = parse("x.md", &BUNDLE.replace("version: 2", "version: two")).unwrap_err();
        assert!(e.to_string().contains("version"), "{e}");
        let e = parse(
            "x.md",
            &BUNDLE.replace("practice: fall-bundle # the code to record\n", ""),
        )
        .unwrap_err();
        assert!(e.to_string().contains("practice code"), "{e}");
        let e = parse("x.md", &BUNDLE.replace("kind:", "colour: red\nkind:")).unwrap_err();
        assert!(e.to_string().contains("unknown key \"colour\""), "{e}");
        let e = parse(
            "x.md",
            &BUNDLE.replace("kind:", "peer_group: region=mars\nkind:"),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("peer_group") && e.to_string().contains("mars"),
            "{e}"
        );
        let targeted = parse(
            "x.md",
            &BUNDLE.replace("kind:", "peer_group: region=west\nkind:"),
        )
        .unwrap();
        assert_eq!(
            targeted.target_peer_group.unwrap().regions,
            [pb::CensusRegion::West as i32]
        );
        let e = parse("x.md", &BUNDLE.replace("2026-03-01", "March")).unwrap_err();
        assert!(e.to_string().contains("YYYY-MM-DD"), "{e}");
    }
}
