//! The grammar JQL and CQL share: `field op value` clauses joined by AND / OR / NOT with
//! parentheses, `IN (…)` lists, `IS [NOT] EMPTY`, function values such as `now("-4w")`, and a
//! trailing `ORDER BY field [ASC|DESC], …`. Each product compiles the tree against its own
//! fields and words its own errors.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Query {
    pub filter: Option<Expr>,
    pub order_by: Vec<SortKey>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Clause(Clause),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Clause {
    pub field: String,
    pub op: Op,
    pub values: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Literal(String),
    Function(String, Vec<String>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Literal(s) => f.write_str(s),
            Value::Function(name, args) => write!(f, "{name}({})", args.join(", ")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    NotEq,
    Gt,
    Ge,
    Lt,
    Le,
    In,
    NotIn,
    Contains,
    NotContains,
    Is,
    IsNot,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::NotEq => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::In => "in",
            Op::NotIn => "not in",
            Op::Contains => "~",
            Op::NotContains => "!~",
            Op::Is => "is",
            Op::IsNot => "is not",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub field: String,
    pub descending: bool,
}

/// A syntax error: what was expected, what was found, and where (1-based character).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub expected: String,
    pub found: String,
    pub position: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Expecting {} but got '{}'. (line 1, character {})",
            self.expected, self.found, self.position
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Comma,
    Op(Op),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Op(op) => op.to_string(),
            Tok::End => "<EOF>".into(),
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

const RESERVED: &[&str] = &[
    "and", "or", "not", "in", "is", "order", "by", "empty", "null", "asc", "desc",
];

fn lex(input: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push((Tok::LParen, pos));
                i += 1;
            }
            ')' => {
                out.push((Tok::RParen, pos));
                i += 1;
            }
            ',' => {
                out.push((Tok::Comma, pos));
                i += 1;
            }
            '=' => {
                out.push((Tok::Op(Op::Eq), pos));
                i += 1;
            }
            '~' => {
                out.push((Tok::Op(Op::Contains), pos));
                i += 1;
            }
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let (op, len) = match (c, next) {
                    ('!', Some('=')) => (Op::NotEq, 2),
                    ('!', Some('~')) => (Op::NotContains, 2),
                    ('<', Some('=')) => (Op::Le, 2),
                    ('>', Some('=')) => (Op::Ge, 2),
                    ('<', _) => (Op::Lt, 1),
                    ('>', _) => (Op::Gt, 1),
                    _ => {
                        return Err(SyntaxError {
                            expected: "an operator".into(),
                            found: c.to_string(),
                            position: pos,
                        });
                    }
                };
                out.push((Tok::Op(op), pos));
                i += len;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(SyntaxError {
                                expected: format!("a closing {quote}"),
                                found: "<EOF>".into(),
                                position: pos,
                            });
                        }
                        Some('\\') => {
                            match chars.get(i + 1) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(&other) => s.push(other),
                                None => {}
                            }
                            i += 2;
                        }
                        Some(&ch) if ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push((Tok::Str(s), pos));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !"()=!<>~,\"'".contains(chars[i])
                {
                    i += 1;
                }
                out.push((Tok::Word(chars[start..i].iter().collect()), pos));
            }
        }
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.toks.get(self.at).map(|(t, _)| t).unwrap_or(&Tok::End)
    }

    fn peek2(&self) -> &Tok {
        self.toks
            .get(self.at + 1)
            .map(|(t, _)| t)
            .unwrap_or(&Tok::End)
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.at < self.toks.len() {
            self.at += 1;
        }
        t
    }

    fn error(&self, expected: &str) -> SyntaxError {
        let (tok, position) = self.toks.get(self.at).cloned().unwrap_or((Tok::End, 0));
        SyntaxError {
            expected: expected.into(),
            found: tok.describe(),
            position,
        }
    }

    fn at_order_by(&self) -> bool {
        self.peek().is_keyword("order") && self.peek2().is_keyword("by")
    }

    fn query(&mut self) -> Result<Query, SyntaxError> {
        let filter = if self.at_order_by() || *self.peek() == Tok::End {
            None
        } else {
            Some(self.or()?)
        };
        let mut order_by = Vec::new();
        if self.at_order_by() {
            self.bump();
            self.bump();
            loop {
                let field = self.field("a field name to order by")?;
                let descending = if self.peek().is_keyword("desc") {
                    self.bump();
                    true
                } else {
                    if self.peek().is_keyword("asc") {
                        self.bump();
                    }
                    false
                };
                order_by.push(SortKey { field, descending });
                if *self.peek() == Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        if *self.peek() != Tok::End {
            return Err(self.error(if order_by.is_empty() {
                "either 'AND', 'OR' or 'ORDER BY'"
            } else {
                "',' or the end of the query"
            }));
        }
        Ok(Query { filter, order_by })
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut parts = vec![self.and()?];
        while self.peek().is_keyword("or") {
            self.bump();
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut parts = vec![self.unary()?];
        while self.peek().is_keyword("and") {
            self.bump();
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if self.peek().is_keyword("not") {
            self.bump();
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if *self.peek() == Tok::LParen {
            self.bump();
            let inner = self.or()?;
            if self.bump() != Tok::RParen {
                self.at = self.at.saturating_sub(1);
                return Err(self.error("')'"));
            }
            return Ok(inner);
        }
        self.clause().map(Expr::Clause)
    }

    fn field(&mut self, expected: &str) -> Result<String, SyntaxError> {
        match self.peek().clone() {
            Tok::Word(w) if !RESERVED.iter().any(|r| w.eq_ignore_ascii_case(r)) => {
                self.bump();
                Ok(w)
            }
            Tok::Str(s) => {
                self.bump();
                Ok(s)
            }
            _ => Err(self.error(expected)),
        }
    }

    fn clause(&mut self) -> Result<Clause, SyntaxError> {
        let field = self.field("a field name")?;
        let op = match self.peek().clone() {
            Tok::Op(op) => {
                self.bump();
                op
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("in") => {
                self.bump();
                Op::In
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("not") && self.peek2().is_keyword("in") => {
                self.bump();
                self.bump();
                Op::NotIn
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("is") => {
                self.bump();
                if self.peek().is_keyword("not") {
                    self.bump();
                    Op::IsNot
                } else {
                    Op::Is
                }
            }
            _ => {
                return Err(self.error(
                    "an operator ('=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' or 'IS NOT')",
                ));
            }
        };
        let values = match op {
            Op::In | Op::NotIn => {
                if self.bump() != Tok::LParen {
                    self.at = self.at.saturating_sub(1);
                    return Err(self.error("'('"));
                }
                let mut values = vec![self.value()?];
                loop {
                    match self.bump() {
                        Tok::Comma => values.push(self.value()?),
                        Tok::RParen => break,
                        _ => {
                            self.at = self.at.saturating_sub(1);
                            return Err(self.error("',' or ')'"));
                        }
                    }
                }
                values
            }
            Op::Is | Op::IsNot => match self.bump() {
                Tok::Word(w)
                    if w.eq_ignore_ascii_case("empty") || w.eq_ignore_ascii_case("null") =>
                {
                    vec![Value::Literal("EMPTY".into())]
                }
                _ => {
                    self.at = self.at.saturating_sub(1);
                    return Err(self.error("'EMPTY' or 'NULL'"));
                }
            },
            _ => vec![self.value()?],
        };
        Ok(Clause { field, op, values })
    }

    fn value(&mut self) -> Result<Value, SyntaxError> {
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(Value::Literal(s))
            }
            Tok::Word(w) if !RESERVED.iter().any(|r| w.eq_ignore_ascii_case(r)) => {
                self.bump();
                if *self.peek() != Tok::LParen {
                    return Ok(Value::Literal(w));
                }
                self.bump();
                let mut args = Vec::new();
                loop {
                    match self.bump() {
                        Tok::RParen => break,
                        Tok::Comma => {}
                        Tok::Word(a) | Tok::Str(a) => args.push(a),
                        _ => {
                            self.at = self.at.saturating_sub(1);
                            return Err(self.error("a function argument or ')'"));
                        }
                    }
                }
                Ok(Value::Function(w, args))
            }
            _ => Err(self.error("a value")),
        }
    }
}

/// Parses a JQL or CQL string.
pub(crate) fn parse(input: &str) -> Result<Query, SyntaxError> {
    let toks = lex(input)?;
    Parser { toks, at: 0 }.query()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Value {
        Value::Literal(s.into())
    }

    #[test]
    fn parses_clauses_lists_and_order() {
        let q = parse(
            r#"project in (A, "B") AND updated >= "2024-05-01 10:00" ORDER BY updated DESC, key"#,
        )
        .unwrap();
        assert_eq!(
            q.filter,
            Some(Expr::And(vec![
                Expr::Clause(Clause {
                    field: "project".into(),
                    op: Op::In,
                    values: vec![lit("A"), lit("B")]
                }),
                Expr::Clause(Clause {
                    field: "updated".into(),
                    op: Op::Ge,
                    values: vec![lit("2024-05-01 10:00")]
                }),
            ]))
        );
        assert_eq!(
            q.order_by,
            vec![
                SortKey {
                    field: "updated".into(),
                    descending: true
                },
                SortKey {
                    field: "key".into(),
                    descending: false
                }
            ]
        );
    }

    #[test]
    fn order_by_alone_has_no_filter() {
        let q = parse("order by key desc").unwrap();
        assert_eq!(q.filter, None);
        assert_eq!(parse("").unwrap().filter, None);
    }

    #[test]
    fn or_not_parentheses_and_functions() {
        let q = parse(r#"not (space = X or type = page) and lastmodified > now("-4w")"#).unwrap();
        let Some(Expr::And(parts)) = q.filter else {
            panic!("expected AND")
        };
        assert!(matches!(parts[0], Expr::Not(_)));
        let Expr::Clause(c) = &parts[1] else {
            panic!("expected clause")
        };
        assert_eq!(
            c.values,
            vec![Value::Function("now".into(), vec!["-4w".into()])]
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = parse("project = ").unwrap_err();
        assert_eq!(e.found, "<EOF>");
        assert!(parse("project ALPHA").is_err());
        assert!(parse("project = A AND").is_err());
        assert!(parse("project in (A, B").is_err());
        assert!(parse("summary ~ \"unterminated").is_err());
        assert!(parse("key = A-1 B").is_err());
        assert!(parse("(project = A").is_err());
    }
}
