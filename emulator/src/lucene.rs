//! The subset of Lucene query syntax Auth0's user search (v3) accepts, parsed into a tree and
//! evaluated against Management API user objects.
//!
//! - Terms `field:value`, `field:"quoted phrase"` (`\"` and `\\` escapes inside), and
//!   `field:(a OR b)` groups that apply one field to several values.
//! - Unquoted values: `\x` is the literal `x` for any `x`; an unescaped `*` matches any
//!   sequence and `?` any one character; `field:*` means the field exists (has a value).
//!   An unescaped `"` or `:` inside an unquoted value is a syntax error.
//! - `AND`, `OR`, `NOT` (uppercase only), parentheses; `AND` binds tighter than `OR`; two
//!   terms side by side are OR-ed (Lucene's default operator); `a NOT b` is `a AND NOT b`.
//! - `email`, `name`, `given_name`, `family_name` and `nickname` are normalized (compared
//!   case-insensitively); every other field, `app_metadata.*` and `user_metadata.*` included,
//!   is case-sensitive. Dotted paths walk objects, arrays match when any element matches,
//!   numbers and booleans compare by their JSON text, nulls and empty arrays are not indexed.
//!   A field the user object does not have matches nothing.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    And(Box<Query>, Box<Query>),
    Or(Box<Query>, Box<Query>),
    Not(Box<Query>),
    Term { field: String, value: Term },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    /// `field:*`
    Exists,
    /// A quoted phrase: the exact value, no wildcards.
    Phrase(String),
    /// An unquoted value, possibly with wildcards.
    Pattern(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Char(char),
    /// `*`
    Any,
    /// `?`
    One,
}

const NORMALIZED: [&str; 5] = ["email", "name", "given_name", "family_name", "nickname"];

/// Parses a query, or describes the syntax error.
pub fn parse(input: &str) -> Result<Query, String> {
    let mut parser = Parser {
        chars: input.chars().collect(),
        pos: 0,
        depth: 0,
    };
    let query = parser.or(None)?;
    parser.skip_ws();
    match parser.peek() {
        None => Ok(query),
        Some(')') => Err("unbalanced parenthesis: unexpected ')'".into()),
        Some(c) => Err(format!("unexpected '{c}'")),
    }
}

/// Deepest nesting of parentheses and `NOT`s accepted (bounds the parser's recursion).
const MAX_DEPTH: usize = 64;

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Whether an operator keyword starts here (followed by a space, `(`, `"` or the end).
    fn keyword(&self, word: &str) -> bool {
        let len = word.chars().count();
        let matches = self.chars.len() >= self.pos + len
            && self.chars[self.pos..self.pos + len]
                .iter()
                .copied()
                .eq(word.chars());
        let boundary = self
            .chars
            .get(self.pos + len)
            .is_none_or(|c| c.is_whitespace() || *c == '(' || *c == '"');
        matches && boundary
    }

    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("query is nested too deeply".into());
        }
        Ok(())
    }

    fn expect_operand(&mut self, op: &str) -> Result<(), String> {
        self.skip_ws();
        if matches!(self.peek(), None | Some(')')) || self.keyword("AND") || self.keyword("OR") {
            return Err(format!("dangling operator {op}"));
        }
        Ok(())
    }

    fn or(&mut self, field: Option<&str>) -> Result<Query, String> {
        let mut left = self.and(field)?;
        loop {
            self.skip_ws();
            if matches!(self.peek(), None | Some(')')) {
                return Ok(left);
            }
            if self.keyword("OR") {
                self.pos += 2;
                self.expect_operand("OR")?;
            }
            let right = self.and(field)?;
            left = Query::Or(Box::new(left), Box::new(right));
        }
    }

    fn and(&mut self, field: Option<&str>) -> Result<Query, String> {
        let mut left = self.unary(field)?;
        loop {
            self.skip_ws();
            let right = if self.keyword("AND") {
                self.pos += 3;
                self.expect_operand("AND")?;
                self.unary(field)?
            } else if self.keyword("NOT") {
                self.unary(field)?
            } else {
                return Ok(left);
            };
            left = Query::And(Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self, field: Option<&str>) -> Result<Query, String> {
        self.skip_ws();
        if self.keyword("NOT") {
            self.pos += 3;
            self.expect_operand("NOT")?;
            self.nest()?;
            let operand = self.unary(field)?;
            self.depth -= 1;
            return Ok(Query::Not(Box::new(operand)));
        }
        self.primary(field)
    }

    fn primary(&mut self, field: Option<&str>) -> Result<Query, String> {
        self.skip_ws();
        match self.peek() {
            None => Err("unexpected end of query".into()),
            Some('(') => {
                self.pos += 1;
                self.nest()?;
                let inner = self.or(field)?;
                self.close_paren()?;
                self.depth -= 1;
                Ok(inner)
            }
            Some(')') => Err("unbalanced parenthesis: unexpected ')'".into()),
            _ if self.keyword("AND") => Err("dangling operator AND".into()),
            _ if self.keyword("OR") => Err("dangling operator OR".into()),
            _ => match field {
                Some(field) => self.value(field),
                None => self.term(),
            },
        }
    }

    fn close_paren(&mut self) -> Result<(), String> {
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err("unbalanced parenthesis: missing ')'".into());
        }
        self.pos += 1;
        Ok(())
    }

    fn term(&mut self) -> Result<Query, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '$'))
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        if name.is_empty() || self.peek() != Some(':') {
            return Err(format!(
                "missing field name (expected field:value) at '{name}'"
            ));
        }
        self.pos += 1;
        if self.peek() == Some('(') {
            self.pos += 1;
            let group = self.or(Some(&name))?;
            self.close_paren()?;
            return Ok(group);
        }
        self.value(&name)
    }

    fn value(&mut self, field: &str) -> Result<Query, String> {
        let term = if self.peek() == Some('"') {
            self.pos += 1;
            Term::Phrase(self.phrase()?)
        } else {
            let pieces = self.pattern()?;
            if pieces.is_empty() {
                return Err(format!("missing value for field {field}"));
            }
            if pieces == [Piece::Any] {
                Term::Exists
            } else {
                Term::Pattern(pieces)
            }
        };
        Ok(Query::Term {
            field: field.to_string(),
            value: term,
        })
    }

    fn escaped(&mut self) -> Result<char, String> {
        self.pos += 1;
        let c = self
            .peek()
            .ok_or("dangling escape character '\\' at end of query")?;
        self.pos += 1;
        Ok(c)
    }

    fn phrase(&mut self) -> Result<String, String> {
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted phrase".into()),
                Some('\\') => text.push(self.escaped()?),
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        match self.peek() {
            None | Some(')') => Ok(text),
            Some(c) if c.is_whitespace() => Ok(text),
            Some(c) => Err(format!("unexpected '{c}' after a quoted phrase")),
        }
    }

    fn pattern(&mut self) -> Result<Vec<Piece>, String> {
        let mut pieces = Vec::new();
        loop {
            match self.peek() {
                None | Some('(') | Some(')') => return Ok(pieces),
                Some(c) if c.is_whitespace() => return Ok(pieces),
                Some('\\') => pieces.push(Piece::Char(self.escaped()?)),
                Some('"') => return Err("unexpected '\"' inside a value".into()),
                Some(':') => return Err("unescaped ':' inside a value".into()),
                Some(c) => {
                    pieces.push(match c {
                        '*' => Piece::Any,
                        '?' => Piece::One,
                        c => Piece::Char(c),
                    });
                    self.pos += 1;
                }
            }
        }
    }
}

/// Whether a Management API user object satisfies the query.
pub fn matches(query: &Query, user: &Value) -> bool {
    match query {
        Query::And(a, b) => matches(a, user) && matches(b, user),
        Query::Or(a, b) => matches(a, user) || matches(b, user),
        Query::Not(a) => !matches(a, user),
        Query::Term { field, value } => {
            let normalized = NORMALIZED.contains(&field.as_str());
            let path: Vec<&str> = field.split('.').collect();
            let mut leaves = Vec::new();
            collect(user, &path, &mut leaves);
            let fold = |s: &str| {
                if normalized {
                    s.to_lowercase()
                } else {
                    s.to_string()
                }
            };
            match value {
                Term::Exists => !leaves.is_empty(),
                Term::Phrase(text) => {
                    let wanted = fold(text);
                    leaves.iter().any(|leaf| fold(leaf) == wanted)
                }
                Term::Pattern(pieces) => {
                    let pieces: Vec<Piece> = pieces
                        .iter()
                        .map(|p| match p {
                            Piece::Char(c) if normalized => {
                                Piece::Char(c.to_lowercase().next().unwrap_or(*c))
                            }
                            other => other.clone(),
                        })
                        .collect();
                    leaves.iter().any(|leaf| {
                        let chars: Vec<char> = fold(leaf).chars().collect();
                        glob(&pieces, &chars)
                    })
                }
            }
        }
    }
}

/// The indexed values at a dotted path; arrays are transparent at every level.
fn collect(value: &Value, path: &[&str], out: &mut Vec<String>) {
    match (value, path.split_first()) {
        (Value::Array(items), _) => items.iter().for_each(|i| collect(i, path, out)),
        (Value::Object(map), Some((head, rest))) => {
            if let Some(next) = map.get(*head) {
                collect(next, rest, out);
            }
        }
        (_, Some(_)) => {}
        (Value::String(s), None) => out.push(s.clone()),
        (Value::Number(n), None) => out.push(n.to_string()),
        (Value::Bool(b), None) => out.push(b.to_string()),
        (Value::Null | Value::Object(_), None) => {}
    }
}

/// Wildcard match of a whole value, backtracking to the last `*`.
fn glob(pattern: &[Piece], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Piece::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(Piece::One) => {
                p += 1;
                t += 1;
            }
            Some(Piece::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|x| *x == Piece::Any)
}

#[cfg(test)]
mod tests;
