//! The CQL subset the fake understands, compiled against a site's Confluence.
//!
//! Fields: `space`/`space.key` (=, !=, IN, NOT IN), `type` (page, blogpost, attachment, comment),
//! `lastmodified` and `created` (=, !=, >, >=, <, <=; `"yyyy-MM-dd HH:mm"`, `"yyyy-MM-dd"`,
//! slashes too, periods like `-4w`, `now()` and `now("-4w")`), `title` (=, !=, ~, !~),
//! `id` (=, !=, IN, NOT IN), `ancestor` and `parent` (=, IN), `container` (=, IN: attachments and
//! comments of a page or blog post; https://developer.atlassian.com/cloud/confluence/cql-fields/
//! documents `container in (123, 223, 323)`, and Onyx lists comments with
//! `type=comment and container='…'`). AND, OR, NOT, parentheses. `ORDER BY lastmodified|created|title|id|space|type
//! [ASC|DESC]`; default `id ASC`, ties by id. Unknown spaces simply match nothing (as in
//! Confluence); unknown fields and bad values are 400s ("400: Returned if the CQL is invalid or
//! missing", v1 `GET /wiki/rest/api/content/search`). Field and operator semantics:
//! https://developer.atlassian.com/cloud/confluence/cql-fields/ and .../cql-operators/; date
//! literals: `timefmt.rs`. ASSUMPTION (undocumented): the default order and the tie-break; our
//! exporter follows `_links.next` and collects ids, so it does not depend on them.

use std::cmp::Ordering;
use std::collections::HashSet;

use time::OffsetDateTime;

use super::{ConfluenceState, ContentInfo, ContentKind};
use crate::fake::query_lang::{self, Clause, Expr, Op, Value};
use crate::fake::timefmt;

/// One searchable item: a page/blog post, an attachment or a comment (by index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Page(usize),
    Attachment(usize),
    Comment(usize),
}

impl Item {
    fn numeric_id(self, s: &ConfluenceState) -> u64 {
        match self {
            Item::Page(i) => s.pages[i].id,
            Item::Attachment(a) => s.attachments[a].id,
            Item::Comment(c) => s.comments[c].id,
        }
    }

    /// The page or blog post it belongs to (itself for a page).
    pub(crate) fn page(self, s: &ConfluenceState) -> usize {
        match self {
            Item::Page(i) => i,
            Item::Attachment(a) => s.attachments[a].page,
            Item::Comment(c) => s.comments[c].page,
        }
    }

    fn kind(self, s: &ConfluenceState) -> ContentKind {
        match self {
            Item::Page(i) => s.pages[i].kind,
            Item::Attachment(_) => ContentKind::Attachment,
            Item::Comment(_) => ContentKind::Comment,
        }
    }

    fn space(self, s: &ConfluenceState) -> usize {
        s.pages[self.page(s)].space
    }

    fn title(self, s: &ConfluenceState) -> &str {
        match self {
            Item::Page(i) => &s.pages[i].title,
            Item::Attachment(a) => &s.attachments[a].title,
            // Comments are titled "Re: <page title>"; the page title stands for it here.
            Item::Comment(c) => &s.pages[s.comments[c].page].title,
        }
    }

    fn created(self, s: &ConfluenceState) -> OffsetDateTime {
        match self {
            Item::Page(i) => s.pages[i].created,
            Item::Attachment(a) => s.attachments[a].created,
            Item::Comment(c) => s.comments[c].created,
        }
    }

    fn modified(self, s: &ConfluenceState) -> OffsetDateTime {
        match self {
            Item::Page(i) => s.pages[i].modified,
            Item::Attachment(a) => s.attachments[a].created,
            Item::Comment(c) => s.comments[c].created,
        }
    }
}

pub(crate) fn content_info(s: &ConfluenceState, item: Item) -> ContentInfo {
    ContentInfo {
        id: match item {
            Item::Page(i) => s.pages[i].id.to_string(),
            Item::Attachment(a) => s.attachments[a].public_id(),
            Item::Comment(c) => s.comments[c].id.to_string(),
        },
        kind: item.kind(s),
        title: item.title(s).to_owned(),
        space_key: s.spaces[item.space(s)].key.clone(),
        last_modified: item.modified(s),
    }
}

#[derive(Debug)]
enum Pred {
    All(Vec<Pred>),
    Any(Vec<Pred>),
    Not(Box<Pred>),
    Spaces(HashSet<String>),
    Kinds(HashSet<ContentKind>),
    Ids(HashSet<u64>),
    Ancestors(HashSet<u64>),
    Parents(HashSet<u64>),
    Containers(HashSet<u64>),
    TitleIs(String),
    TitleHas(String),
    Date {
        created: bool,
        op: Op,
        at: OffsetDateTime,
    },
}

/// Items matching `cql`, in result order. `Err` is the 400 message.
pub(crate) fn search(
    s: &ConfluenceState,
    cql: &str,
    now: OffsetDateTime,
) -> Result<Vec<Item>, String> {
    let bad = |why: String| format!("Could not parse cql : {cql} ({why})");
    let query = query_lang::parse(cql).map_err(|e| bad(e.to_string()))?;
    let filter = query
        .filter
        .as_ref()
        .ok_or_else(|| bad("a CQL query needs at least one clause".into()))?;
    let pred = compile(filter, now).map_err(bad)?;
    let mut order = Vec::new();
    for key in &query.order_by {
        let field = key.field.to_ascii_lowercase();
        if !matches!(
            field.as_str(),
            "lastmodified" | "created" | "title" | "id" | "space" | "type"
        ) {
            return Err(bad(format!("cannot order by '{}'", key.field)));
        }
        order.push((field, key.descending));
    }
    let items = (0..s.pages.len())
        .filter(|i| !s.pages[*i].deleted)
        .map(Item::Page)
        .chain(
            (0..s.attachments.len())
                .filter(|a| !s.pages[s.attachments[*a].page].deleted)
                .map(Item::Attachment),
        )
        .chain(
            (0..s.comments.len())
                .filter(|c| !s.pages[s.comments[*c].page].deleted)
                .map(Item::Comment),
        );
    let mut hits: Vec<Item> = items.filter(|item| eval(&pred, s, *item)).collect();
    hits.sort_by(|a, b| compare(s, *a, *b, &order));
    Ok(hits)
}

fn compare(s: &ConfluenceState, a: Item, b: Item, order: &[(String, bool)]) -> Ordering {
    for (field, descending) in order {
        let o = match field.as_str() {
            "lastmodified" => a.modified(s).cmp(&b.modified(s)),
            "created" => a.created(s).cmp(&b.created(s)),
            "title" => a.title(s).to_lowercase().cmp(&b.title(s).to_lowercase()),
            "space" => s.spaces[a.space(s)].key.cmp(&s.spaces[b.space(s)].key),
            "type" => a.kind(s).as_str().cmp(b.kind(s).as_str()),
            _ => a.numeric_id(s).cmp(&b.numeric_id(s)),
        };
        let o = if *descending { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.numeric_id(s).cmp(&b.numeric_id(s))
}

fn eval(pred: &Pred, s: &ConfluenceState, item: Item) -> bool {
    match pred {
        Pred::All(ps) => ps.iter().all(|p| eval(p, s, item)),
        Pred::Any(ps) => ps.iter().any(|p| eval(p, s, item)),
        Pred::Not(p) => !eval(p, s, item),
        Pred::Spaces(keys) => keys.contains(&s.spaces[item.space(s)].key.to_ascii_uppercase()),
        Pred::Kinds(kinds) => kinds.contains(&item.kind(s)),
        Pred::Ids(ids) => ids.contains(&item.numeric_id(s)),
        Pred::Ancestors(ids) => match item {
            Item::Page(i) => s.ancestors(i).iter().any(|a| ids.contains(&s.pages[*a].id)),
            Item::Attachment(_) | Item::Comment(_) => false,
        },
        Pred::Parents(ids) => match item {
            Item::Page(i) => s.pages[i]
                .parent
                .is_some_and(|p| ids.contains(&s.pages[p].id)),
            Item::Attachment(_) | Item::Comment(_) => false,
        },
        Pred::Containers(ids) => match item {
            Item::Attachment(_) | Item::Comment(_) => ids.contains(&s.pages[item.page(s)].id),
            Item::Page(_) => false,
        },
        Pred::TitleIs(t) => item.title(s).eq_ignore_ascii_case(t),
        Pred::TitleHas(t) => item.title(s).to_lowercase().contains(&t.to_lowercase()),
        Pred::Date { created, op, at } => {
            let t = if *created {
                item.created(s)
            } else {
                item.modified(s)
            };
            match op {
                Op::Gt => t > *at,
                Op::Ge => t >= *at,
                Op::Lt => t < *at,
                Op::Le => t <= *at,
                Op::Eq => t
                    .replace_second(0)
                    .and_then(|t| t.replace_nanosecond(0))
                    .is_ok_and(|t| t == *at),
                Op::NotEq => !t
                    .replace_second(0)
                    .and_then(|t| t.replace_nanosecond(0))
                    .is_ok_and(|t| t == *at),
                _ => false,
            }
        }
    }
}

fn compile(expr: &Expr, now: OffsetDateTime) -> Result<Pred, String> {
    Ok(match expr {
        Expr::And(parts) => Pred::All(
            parts
                .iter()
                .map(|p| compile(p, now))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(parts) => Pred::Any(
            parts
                .iter()
                .map(|p| compile(p, now))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(inner) => Pred::Not(Box::new(compile(inner, now)?)),
        Expr::Clause(c) => clause(c, now)?,
    })
}

fn literals(c: &Clause) -> Result<Vec<String>, String> {
    c.values
        .iter()
        .map(|v| match v {
            Value::Literal(s) => Ok(s.clone()),
            Value::Function(name, _) => Err(format!(
                "function {name}() is not supported for field '{}'",
                c.field
            )),
        })
        .collect()
}

fn ids(c: &Clause) -> Result<HashSet<u64>, String> {
    literals(c)?
        .iter()
        .map(|v| {
            v.trim_start_matches("att")
                .parse::<u64>()
                .map_err(|_| format!("'{v}' is not a content id"))
        })
        .collect()
}

/// `=`/`IN` keep, `!=`/`NOT IN` negate; `equal_only` refuses the negations.
fn set_op(c: &Clause, pred: Pred, equal_only: bool) -> Result<Pred, String> {
    match c.op {
        Op::Eq | Op::In => Ok(pred),
        Op::NotEq | Op::NotIn if !equal_only => Ok(Pred::Not(Box::new(pred))),
        op => Err(format!(
            "operator '{op}' is not supported for field '{}'",
            c.field
        )),
    }
}

fn clause(c: &Clause, now: OffsetDateTime) -> Result<Pred, String> {
    match c.field.to_ascii_lowercase().as_str() {
        "space" | "space.key" => {
            let keys = literals(c)?
                .into_iter()
                .map(|k| k.to_ascii_uppercase())
                .collect();
            set_op(c, Pred::Spaces(keys), false)
        }
        "type" => {
            let mut kinds = HashSet::new();
            for t in literals(c)? {
                match t.to_ascii_lowercase().as_str() {
                    "page" => kinds.insert(ContentKind::Page),
                    "blogpost" => kinds.insert(ContentKind::BlogPost),
                    "attachment" => kinds.insert(ContentKind::Attachment),
                    "comment" => kinds.insert(ContentKind::Comment),
                    other => return Err(format!("unknown content type '{other}'")),
                };
            }
            set_op(c, Pred::Kinds(kinds), false)
        }
        "id" | "content" => set_op(c, Pred::Ids(ids(c)?), false),
        "ancestor" => set_op(c, Pred::Ancestors(ids(c)?), true),
        "parent" => set_op(c, Pred::Parents(ids(c)?), true),
        "container" => set_op(c, Pred::Containers(ids(c)?), true),
        "title" => {
            let value = literals(c)?.into_iter().next().unwrap_or_default();
            match c.op {
                Op::Eq => Ok(Pred::TitleIs(value)),
                Op::NotEq => Ok(Pred::Not(Box::new(Pred::TitleIs(value)))),
                Op::Contains => Ok(Pred::TitleHas(value)),
                Op::NotContains => Ok(Pred::Not(Box::new(Pred::TitleHas(value)))),
                op => Err(format!(
                    "operator '{op}' is not supported for field 'title'"
                )),
            }
        }
        "lastmodified" | "created" => {
            if !matches!(c.op, Op::Eq | Op::NotEq | Op::Gt | Op::Ge | Op::Lt | Op::Le) {
                return Err(format!(
                    "operator '{}' is not supported for field '{}'",
                    c.op, c.field
                ));
            }
            let value = c.values.first().ok_or("missing value")?;
            let at = match value {
                Value::Literal(s) => timefmt::parse_date_literal(s, now),
                Value::Function(name, args) if name.eq_ignore_ascii_case("now") => {
                    match args.first() {
                        None => Some(now),
                        Some(period) => timefmt::parse_date_literal(period, now),
                    }
                }
                Value::Function(..) => None,
            }
            .ok_or_else(|| format!("'{value}' is not a valid date for field '{}'", c.field))?;
            Ok(Pred::Date {
                created: c.field.eq_ignore_ascii_case("created"),
                op: c.op,
                at,
            })
        }
        _ => Err(format!("field '{}' is not supported", c.field)),
    }
}
