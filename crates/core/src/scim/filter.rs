//! The SCIM filter language (RFC 7644 §3.4.2.2) and PATCH paths
//! (§3.5.2): parsed into a tree, never evaluated as text. Precedence is
//! `not` over `and` over `or`; keywords and operators are case-insensitive;
//! nesting is bounded so no input can exhaust the stack.

use std::fmt;

/// How deep parentheses and brackets may nest.
const MAX_DEPTH: usize = 32;
/// Longer filters are refused before parsing.
pub const MAX_FILTER_LEN: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
}

/// A comparison value: JSON `false`, `null`, `true`, a number or a string.
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
}

/// `[URI ":"] ATTRNAME ["." subAttr]`. Names are kept as written;
/// resolution against a schema is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    pub uri: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(uri) = &self.uri {
            write!(f, "{uri}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: CompValue,
    },
    Present(AttrPath),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some value of the multi-valued `attr` matches
    /// `filter`, whose paths name `attr`'s sub-attributes.
    ValuePath {
        attr: AttrPath,
        filter: Box<Filter>,
    },
}

/// A PATCH operation's target: `attr`, `attr.sub`, `attr[filter]` or
/// `attr[filter].sub`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    /// The sub-attribute after a value filter (`emails[…].value`).
    pub sub: Option<String>,
}

/// Why a filter or path did not parse (answered as `invalidFilter` or
/// `invalidPath`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(message.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    OpenBracket,
    CloseBracket,
}

fn tokenize(input: &str) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let chars: Vec<char> = input.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            '[' => {
                tokens.push(Token::OpenBracket);
                i += 1;
            }
            ']' => {
                tokens.push(Token::CloseBracket);
                i += 1;
            }
            '"' => {
                // A JSON string: find its closing quote, then let serde
                // decode the escapes.
                let start = i;
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return err("a string is not closed"),
                        Some('\\') => i += 2,
                        Some('"') => break,
                        Some(_) => i += 1,
                    }
                }
                i += 1;
                let raw: String = chars[start..i].iter().collect();
                let value: String = serde_json::from_str(&raw)
                    .map_err(|_| ParseError(format!("invalid string {raw}")))?;
                // No stored value holds a NUL (PostgreSQL's text cannot):
                // refused here, for both engines alike.
                if value.contains('\0') {
                    return err("a string in the filter holds a NUL character");
                }
                tokens.push(Token::Str(value));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !matches!(
                        chars[i],
                        ' ' | '\t' | '\n' | '\r' | '(' | ')' | '[' | ']' | '"'
                    )
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(tokens)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses `[URI ":"] ATTRNAME ["." subAttr]`.
fn parse_attr_path(word: &str) -> Result<AttrPath, ParseError> {
    let (uri, rest) = match word.rfind(':') {
        Some(at) if word[..at].contains(':') => (Some(word[..at].to_owned()), &word[at + 1..]),
        Some(_) => return err(format!("invalid attribute path {word:?}")),
        None => (None, word),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((name, sub)) => (name, Some(sub)),
        None => (rest, None),
    };
    if !is_name(name) || sub.is_some_and(|s| !is_name(s)) {
        return err(format!("invalid attribute path {word:?}"));
    }
    Ok(AttrPath {
        uri,
        name: name.to_owned(),
        sub: sub.map(str::to_owned),
    })
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!("the filter nests deeper than {MAX_DEPTH} levels"));
        }
        Ok(())
    }

    /// `or` binds loosest.
    fn or(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ParseError> {
        let mut left = self.unary()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, ParseError> {
        if self.peek_keyword("not") && matches!(self.tokens.get(self.pos + 1), Some(Token::Open)) {
            self.pos += 1;
            return Ok(Filter::Not(Box::new(self.group()?)));
        }
        if matches!(self.peek(), Some(Token::Open)) {
            return self.group();
        }
        self.attr_expression()
    }

    fn group(&mut self) -> Result<Filter, ParseError> {
        self.enter()?;
        match self.next() {
            Some(Token::Open) => {}
            _ => return err("expected ("),
        }
        let inner = self.or()?;
        match self.next() {
            Some(Token::Close) => {}
            _ => return err("expected )"),
        }
        self.depth -= 1;
        Ok(inner)
    }

    fn attr_expression(&mut self) -> Result<Filter, ParseError> {
        let word = match self.next() {
            Some(Token::Word(w)) => w,
            Some(_) | None => return err("expected an attribute name"),
        };
        let path = parse_attr_path(&word)?;
        if matches!(self.peek(), Some(Token::OpenBracket)) {
            if path.sub.is_some() {
                return err(format!(
                    "{word}[…]: a value filter follows the attribute itself"
                ));
            }
            self.enter()?;
            self.pos += 1;
            let inner = self.or()?;
            match self.next() {
                Some(Token::CloseBracket) => {}
                _ => return err("expected ]"),
            }
            self.depth -= 1;
            return Ok(Filter::ValuePath {
                attr: path,
                filter: Box::new(inner),
            });
        }
        let op_word = match self.next() {
            Some(Token::Word(w)) => w,
            _ => return err(format!("expected an operator after {word}")),
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::parse(&op_word)
            .ok_or_else(|| ParseError(format!("unknown operator {op_word:?}")))?;
        let value = match self.next() {
            Some(Token::Str(s)) => CompValue::Str(s),
            Some(Token::Word(w)) => match w.as_str() {
                "true" => CompValue::Bool(true),
                "false" => CompValue::Bool(false),
                "null" => CompValue::Null,
                number => match number.parse::<f64>() {
                    Ok(n) if n.is_finite() && !number.starts_with('+') => CompValue::Number(n),
                    _ => return err(format!("invalid comparison value {number:?}")),
                },
            },
            _ => return err(format!("expected a value after {op_word}")),
        };
        Ok(Filter::Compare { path, op, value })
    }
}

/// Parses a `filter` query parameter.
pub fn parse_filter(input: &str) -> Result<Filter, ParseError> {
    if input.len() > MAX_FILTER_LEN {
        return err(format!(
            "the filter is longer than {MAX_FILTER_LEN} characters"
        ));
    }
    let mut parser = Parser {
        tokens: tokenize(input)?,
        pos: 0,
        depth: 0,
    };
    if parser.tokens.is_empty() {
        return err("the filter is empty");
    }
    let filter = parser.or()?;
    if parser.pos < parser.tokens.len() {
        return err("unexpected text after the filter");
    }
    Ok(filter)
}

/// Parses a PATCH operation's `path`.
pub fn parse_patch_path(input: &str) -> Result<PatchPath, ParseError> {
    if input.len() > MAX_FILTER_LEN {
        return err("the path is too long");
    }
    let (head, rest) = match input.find('[') {
        Some(open) => (&input[..open], Some(&input[open..])),
        None => (input, None),
    };
    let attr = parse_attr_path(head.trim())?;
    let Some(rest) = rest else {
        return Ok(PatchPath {
            attr,
            filter: None,
            sub: None,
        });
    };
    if attr.sub.is_some() {
        return err("a value filter follows the attribute itself");
    }
    let close = rest
        .rfind(']')
        .ok_or_else(|| ParseError("expected ]".into()))?;
    let filter = parse_filter(&rest[1..close])?;
    let sub = match &rest[close + 1..] {
        "" => None,
        tail => match tail.strip_prefix('.') {
            Some(sub) if is_name(sub) => Some(sub.to_owned()),
            _ => return err(format!("invalid text after the value filter: {tail:?}")),
        },
    };
    Ok(PatchPath {
        attr,
        filter: Some(filter),
        sub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn path(name: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            uri: None,
            name: name.into(),
            sub: sub.map(Into::into),
        }
    }

    fn eq(name: &str, value: &str) -> Filter {
        Filter::Compare {
            path: path(name, None),
            op: CompareOp::Eq,
            value: CompValue::Str(value.into()),
        }
    }

    #[test]
    fn the_rfc_examples_parse() {
        for example in [
            r#"userName Eq "john""#,
            r#"name.familyName co "O'Malley""#,
            r#"userName sw "J""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            "title pr",
            r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
            r#"title pr and userType eq "Employee""#,
            r#"title pr or userType eq "Intern""#,
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            "active eq true",
            "meta.version eq null",
            "x gt 1.5e3",
        ] {
            parse_filter(example).unwrap_or_else(|e| panic!("{example}: {e}"));
        }
    }

    #[test]
    fn precedence_is_not_and_or() {
        let f = parse_filter(r#"a eq "1" or b eq "2" and c eq "3""#).unwrap();
        assert_eq!(
            f,
            Filter::Or(
                Box::new(eq("a", "1")),
                Box::new(Filter::And(Box::new(eq("b", "2")), Box::new(eq("c", "3"))))
            )
        );
        let f = parse_filter(r#"(a eq "1" or b eq "2") and not (c eq "3")"#).unwrap();
        assert_eq!(
            f,
            Filter::And(
                Box::new(Filter::Or(Box::new(eq("a", "1")), Box::new(eq("b", "2")))),
                Box::new(Filter::Not(Box::new(eq("c", "3"))))
            )
        );
    }

    #[test]
    fn strings_are_json_and_paths_are_split() {
        let f = parse_filter(r#"name.givenName eq "a \"quoted\" \u00e9 ]) value""#).unwrap();
        assert_eq!(
            f,
            Filter::Compare {
                path: path("name", Some("givenName")),
                op: CompareOp::Eq,
                value: CompValue::Str("a \"quoted\" é ]) value".into()),
            }
        );
        let f =
            parse_filter(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName eq "x""#)
                .unwrap();
        let Filter::Compare { path, .. } = f else {
            panic!()
        };
        assert_eq!(
            path.uri.as_deref(),
            Some("urn:ietf:params:scim:schemas:core:2.0:User")
        );
        assert_eq!(
            (path.name.as_str(), path.sub.as_deref()),
            ("name", Some("familyName"))
        );
    }

    #[test]
    fn bad_filters_are_refused_with_a_reason() {
        for bad in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName xx "a""#,
            r#"userName eq "unterminated"#,
            r#"userName eq unquoted"#,
            r#"(userName eq "a""#,
            r#"userName eq "a")"#,
            r#"userName eq "a" and"#,
            r#"emails[type eq "work""#,
            r#"1abc eq "a""#,
            r#"a.b.c eq "x""#,
            r#"userName eq "a" userName eq "b""#,
            "not userName eq \"a\"",
            "userName eq \"a\u{0}b\"",
            r#"userName eq "a\u0000b""#,
        ] {
            assert!(parse_filter(bad).is_err(), "{bad:?} parsed");
        }
        let deep = format!("{}a pr{}", "(".repeat(100), ")".repeat(100));
        assert!(parse_filter(&deep).unwrap_err().0.contains("deeper"));
    }

    #[test]
    fn patch_paths() {
        assert_eq!(
            parse_patch_path("name.givenName").unwrap(),
            PatchPath {
                attr: path("name", Some("givenName")),
                filter: None,
                sub: None
            }
        );
        let p = parse_patch_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(p.attr, path("emails", None));
        assert_eq!(p.filter, Some(eq("type", "work")));
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = parse_patch_path(r#"members[value eq "2819c223"]"#).unwrap();
        assert_eq!(p.sub, None);
        for bad in [
            "",
            "emails[",
            "emails[type eq \"work\"]x",
            "name.a[b eq \"c\"]",
            "a b",
        ] {
            assert!(parse_patch_path(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn the_parser_never_panics(input in ".{0,200}") {
            let _ = parse_filter(&input);
            let _ = parse_patch_path(&input);
        }

        #[test]
        fn grammar_shaped_noise_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("("), Just(")"), Just("["), Just("]"), Just(" and "), Just(" or "),
                    Just("not "), Just("userName"), Just(" eq "), Just(" pr"), Just("\"x\""),
                    Just("emails"), Just(".value"), Just("true"), Just("\\"), Just("\""),
                ],
                0..40,
            )
        ) {
            let input: String = parts.concat();
            let _ = parse_filter(&input);
            let _ = parse_patch_path(&input);
        }
    }
}
