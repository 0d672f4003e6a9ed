//! Field parsers shared by the API's requests: months and month ranges, category lists, and
//! enumerations, each naming the field it rejects.

use crate::event::EventCategory as C;
use crate::month::{Month, MonthRange};
use crate::violations::FieldViolations;

/// A `YYYY-MM` month field, or a violation naming it.
pub fn month_from_wire(text: &str, field: &str, v: &mut FieldViolations) -> Option<Month> {
    if text.is_empty() {
        v.add(field, "required: a month as YYYY-MM");
        return None;
    }
    text.parse().map_err(|e| v.add(field, format!("{e}"))).ok()
}

/// A month range from two `YYYY-MM` fields, or violations naming them.
pub fn month_range_from_wire(
    from: &str,
    to: &str,
    fields: (&str, &str),
) -> Result<MonthRange, FieldViolations> {
    let mut v = FieldViolations::new();
    let from = month_from_wire(from, fields.0, &mut v);
    let to = month_from_wire(to, fields.1, &mut v);
    if let (Some(from), Some(to)) = (from, to) {
        match MonthRange::new(from, to) {
            Ok(range) => return Ok(range),
            Err(e) => v.add(fields.1, e.to_string()),
        }
    }
    Err(v)
}

/// A list of distinct, known categories (used by events and by query filters).
pub fn category_list_from_wire(values: &[i32], field: &str, v: &mut FieldViolations) -> Vec<C> {
    let mut out: Vec<C> = Vec::with_capacity(values.len());
    for (i, raw) in values.iter().enumerate() {
        match C::try_from(*raw) {
            Ok(C::Unspecified) => v.add(format!("{field}[{i}]"), "must be set"),
            Ok(c) if out.contains(&c) => v.add(
                format!("{field}[{i}]"),
                format!("{} is listed twice", c.as_str_name()),
            ),
            Ok(c) => out.push(c),
            Err(_) => v.add(format!("{field}[{i}]"), unknown_value(*raw)),
        }
    }
    out.sort_unstable();
    out
}

/// An optional enum field: any known value, `Unspecified` (the default) included.
pub(super) fn optional_enum<E>(raw: i32, field: &str, v: &mut FieldViolations) -> E
where
    E: TryFrom<i32> + Default,
{
    E::try_from(raw).unwrap_or_else(|_| {
        v.add(field, unknown_value(raw));
        E::default()
    })
}

/// A required enum field: known and not the `*_UNSPECIFIED` zero value.
pub(super) fn required_enum<E>(raw: i32, field: &str, v: &mut FieldViolations) -> Option<E>
where
    E: TryFrom<i32> + Copy + Into<i32>,
{
    match E::try_from(raw) {
        Ok(e) if Into::<i32>::into(e) != 0 => Some(e),
        Ok(_) => {
            v.add(field, "required");
            None
        }
        Err(_) => {
            v.add(field, unknown_value(raw));
            None
        }
    }
}

/// The reason given for an enumeration number the API does not define.
pub(super) fn unknown_value(raw: i32) -> String {
    format!("{raw} is not a known value")
}
