//! The JQL subset the fake understands, compiled against a site's Jira.
//!
//! Fields: `project` (=, !=, IN, NOT IN; key, id or name), `key`/`issuekey`/`id` (=, !=, IN,
//! NOT IN), `created`/`createdDate` and `updated`/`updatedDate` (=, !=, >, >=, <, <=; values
//! `"yyyy-MM-dd HH:mm"`, `"yyyy/MM/dd HH:mm"`, `"yyyy-MM-dd"`, `"yyyy/MM/dd"`, periods such as
//! `-5d`, `now()`, or a whole number of milliseconds since the Unix epoch such as
//! `1700000000000`), all in UTC. Clauses combine with AND, OR, NOT and parentheses.
//! `ORDER BY` accepts key, id, created, updated and project (ASC/DESC); without it the order is
//! `key ASC`. Ties always break by id, so every order is total and paging is stable.
//! ASSUMPTION (undocumented): the default order and the tie-break; the enhanced search docs
//! promise neither; our exporter pages by token and collects the ids of every page, so it does
//! not depend on them. The operators and fields are those of
//! https://support.atlassian.com/jira-software-cloud/docs/jql-fields/ and
//! .../jql-operators/; anything outside the subset answers 400 like a JQL syntax error
//! (the docs: "400: Returned if the search request is invalid").

use std::cmp::Ordering;
use std::collections::HashSet;

use time::OffsetDateTime;

use super::JiraState;
use crate::fake::query_lang::{self, Clause, Expr, Op, Value};
use crate::fake::timefmt;

pub(crate) const UNBOUNDED: &str =
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.";

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JqlError {
    Unbounded,
    Invalid(String),
}

impl JqlError {
    pub(crate) fn message(&self) -> String {
        match self {
            JqlError::Unbounded => UNBOUNDED.to_owned(),
            JqlError::Invalid(m) => m.clone(),
        }
    }
}

#[derive(Debug)]
enum Pred {
    All(Vec<Pred>),
    Any(Vec<Pred>),
    Not(Box<Pred>),
    Projects(HashSet<usize>),
    Issues(HashSet<usize>),
    Date {
        field: DateField,
        op: Op,
        at: OffsetDateTime,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DateField {
    Created,
    Updated,
}

#[derive(Clone, Copy, Debug)]
enum SortField {
    Key,
    Id,
    Created,
    Updated,
    Project,
}

/// Indices of the (not deleted) issues matching `jql`, in result order.
pub(crate) fn search(
    state: &JiraState,
    jql: &str,
    now: OffsetDateTime,
) -> Result<Vec<usize>, JqlError> {
    let query = query_lang::parse(jql)
        .map_err(|e| JqlError::Invalid(format!("Error in the JQL Query: {e}")))?;
    let filter = query.filter.as_ref().ok_or(JqlError::Unbounded)?;
    let pred = compile(filter, state, now)?;
    let mut order = Vec::new();
    for key in &query.order_by {
        let field = match key.field.to_ascii_lowercase().as_str() {
            "key" | "issuekey" => SortField::Key,
            "id" => SortField::Id,
            "created" | "createddate" => SortField::Created,
            "updated" | "updateddate" => SortField::Updated,
            "project" => SortField::Project,
            other => {
                return Err(JqlError::Invalid(format!(
                    "Not able to sort using field '{other}'."
                )));
            }
        };
        order.push((field, key.descending));
    }
    if order.is_empty() {
        order.push((SortField::Key, false));
    }
    let mut hits: Vec<usize> = (0..state.issues.len())
        .filter(|i| !state.issues[*i].deleted && eval(&pred, state, *i))
        .collect();
    hits.sort_by(|a, b| compare(state, *a, *b, &order));
    Ok(hits)
}

fn compare(state: &JiraState, a: usize, b: usize, order: &[(SortField, bool)]) -> Ordering {
    let (x, y) = (&state.issues[a], &state.issues[b]);
    for (field, descending) in order {
        let o = match field {
            SortField::Key => (state.projects[x.project].key.as_str(), x.number)
                .cmp(&(state.projects[y.project].key.as_str(), y.number)),
            SortField::Id => x.id.cmp(&y.id),
            SortField::Created => x.created.cmp(&y.created),
            SortField::Updated => x.updated.cmp(&y.updated),
            SortField::Project => state.projects[x.project]
                .key
                .cmp(&state.projects[y.project].key),
        };
        let o = if *descending { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    x.id.cmp(&y.id)
}

fn eval(pred: &Pred, state: &JiraState, i: usize) -> bool {
    let issue = &state.issues[i];
    match pred {
        Pred::All(ps) => ps.iter().all(|p| eval(p, state, i)),
        Pred::Any(ps) => ps.iter().any(|p| eval(p, state, i)),
        Pred::Not(p) => !eval(p, state, i),
        Pred::Projects(set) => set.contains(&issue.project),
        Pred::Issues(set) => set.contains(&i),
        Pred::Date { field, op, at } => {
            let t = match field {
                DateField::Created => issue.created,
                DateField::Updated => issue.updated,
            };
            match op {
                Op::Gt => t > *at,
                Op::Ge => t >= *at,
                Op::Lt => t < *at,
                Op::Le => t <= *at,
                // Equality on dates is at minute precision, as JQL dates are.
                Op::Eq => truncate_minute(t) == *at,
                Op::NotEq => truncate_minute(t) != *at,
                _ => false,
            }
        }
    }
}

fn truncate_minute(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(t)
}

fn compile(expr: &Expr, state: &JiraState, now: OffsetDateTime) -> Result<Pred, JqlError> {
    Ok(match expr {
        Expr::And(parts) => Pred::All(
            parts
                .iter()
                .map(|p| compile(p, state, now))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(parts) => Pred::Any(
            parts
                .iter()
                .map(|p| compile(p, state, now))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Pred::Not(Box::new(compile(inner, state, now)?)),
        Expr::Clause(clause) => compile_clause(clause, state, now)?,
    })
}

fn compile_clause(c: &Clause, state: &JiraState, now: OffsetDateTime) -> Result<Pred, JqlError> {
    let field = c.field.to_ascii_lowercase();
    let unsupported = || {
        JqlError::Invalid(format!(
            "The operator '{}' is not supported by the '{}' field.",
            c.op, c.field
        ))
    };
    match field.as_str() {
        "project" => {
            let mut set = HashSet::new();
            for v in &c.values {
                let v = literal(v, &c.field)?;
                let found = state.projects.iter().position(|p| {
                    p.key.eq_ignore_ascii_case(&v)
                        || p.id.to_string() == v
                        || p.name.eq_ignore_ascii_case(&v)
                });
                match found {
                    Some(p) => set.insert(p),
                    None => {
                        return Err(JqlError::Invalid(format!(
                            "The value '{v}' does not exist for the field 'project'."
                        )));
                    }
                };
            }
            negate_if(c.op, Pred::Projects(set)).ok_or_else(unsupported)
        }
        "key" | "issuekey" | "id" | "issue" => {
            let mut set = HashSet::new();
            for v in &c.values {
                let v = literal(v, &c.field)?;
                match state.find(&v) {
                    Some(i) => set.insert(i),
                    None => {
                        return Err(JqlError::Invalid(format!(
                            "An issue with key '{v}' does not exist for field '{}'.",
                            c.field
                        )));
                    }
                };
            }
            negate_if(c.op, Pred::Issues(set)).ok_or_else(unsupported)
        }
        "created" | "createddate" | "updated" | "updateddate" => {
            let date_field = if field.starts_with("created") {
                DateField::Created
            } else {
                DateField::Updated
            };
            if !matches!(c.op, Op::Eq | Op::NotEq | Op::Gt | Op::Ge | Op::Lt | Op::Le) {
                return Err(unsupported());
            }
            let value = c.values.first().ok_or_else(unsupported)?;
            let at = date_value(value, now).ok_or_else(|| {
                JqlError::Invalid(format!(
                    "Date value '{value}' for field '{}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', \
                     'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.",
                    c.field
                ))
            })?;
            Ok(Pred::Date {
                field: date_field,
                op: c.op,
                at,
            })
        }
        _ => Err(JqlError::Invalid(format!(
            "Field '{}' does not exist or you do not have permission to view it.",
            c.field
        ))),
    }
}

/// `=`/`IN` keep the set, `!=`/`NOT IN` negate it; other operators are not supported.
fn negate_if(op: Op, pred: Pred) -> Option<Pred> {
    match op {
        Op::Eq | Op::In => Some(pred),
        Op::NotEq | Op::NotIn => Some(Pred::Not(Box::new(pred))),
        _ => None,
    }
}

fn literal(v: &Value, field: &str) -> Result<String, JqlError> {
    match v {
        Value::Literal(s) => Ok(s.clone()),
        Value::Function(name, _) => Err(JqlError::Invalid(format!(
            "Unable to find JQL function '{name}()' for field '{field}'."
        ))),
    }
}

fn date_value(v: &Value, now: OffsetDateTime) -> Option<OffsetDateTime> {
    match v {
        Value::Literal(s) => epoch_millis(s).or_else(|| timefmt::parse_date_literal(s, now)),
        Value::Function(name, args) if name.eq_ignore_ascii_case("now") && args.is_empty() => {
            Some(now)
        }
        Value::Function(..) => None,
    }
}

/// A date given as milliseconds since the Unix epoch. Jira's JQL reads a bare number in a date
/// clause this way, and production clients rely on it: airbyte-source-jira 4.0.0 pages its
/// `issues` stream with `jql=updated >= {{ (timestamp(stream_slice.start_time) * 1000)|int }}`
/// (source_jira/manifest.yaml, `issues_stream`), against Jira Cloud.
fn epoch_millis(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ms: i128 = s.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(ms.checked_mul(1_000_000)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_may_be_epoch_milliseconds() {
        let now = OffsetDateTime::now_utc();
        let at = date_value(&Value::Literal("1700000000000".into()), now);
        assert_eq!(at.map(OffsetDateTime::unix_timestamp), Some(1_700_000_000));
        let at = date_value(&Value::Literal("1700000000123".into()), now);
        assert_eq!(at.map(|t| t.millisecond()), Some(123));
        // Still refused: neither a date, a period nor a number.
        assert_eq!(date_value(&Value::Literal("17000x".into()), now), None);
        assert_eq!(
            date_value(&Value::Literal("-5d".into()), now),
            now.checked_sub(time::Duration::days(5))
        );
    }
}
