//! Tokens of the Python literal subset deploy configs use.

/// A position in a file: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// A piece of an f-string.
#[derive(Clone, Debug, PartialEq)]
pub enum FPart {
    /// Literal text.
    Text(String),
    /// `{name}`: a name to interpolate.
    Name(String, Pos),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
    FStr(Vec<FPart>),
    Op(&'static str),
    Newline,
    /// Leading whitespace before a top-level statement.
    Indent,
    Eof,
}

/// A lexing error: where and what.
#[derive(Debug)]
pub struct LexError {
    pub pos: Pos,
    pub msg: String,
}

const OPS: [&str; 22] = [
    "**", "//", "<<", ">>", "==", "!=", "<=", ">=", "(", ")", "[", "]", "{", "}", ",", ":", "=",
    "+", "-", "*", "/", "%",
];
const OTHER_OPS: [&str; 8] = [".", ";", "<", ">", "|", "&", "~", "@"];

pub struct Lexer<'a> {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    depth: usize,
    at_line_start: bool,
    _src: &'a str,
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Lexer<'a> {
        let src_no_bom = src.strip_prefix('\u{feff}').unwrap_or(src);
        Lexer {
            chars: src_no_bom.chars().collect(),
            i: 0,
            line: 1,
            col: 1,
            depth: 0,
            at_line_start: true,
            _src: src,
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn err<T>(&self, pos: Pos, msg: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            pos,
            msg: msg.into(),
        })
    }

    /// All tokens with their positions, ending with Newline and Eof.
    pub fn tokens(mut self) -> Result<Vec<(Tok, Pos)>, LexError> {
        let mut out: Vec<(Tok, Pos)> = Vec::new();
        loop {
            // Whitespace, comments, continuations, and (at depth 0) newlines.
            let line_start_pos = self.pos();
            let mut saw_indent = false;
            loop {
                match self.peek(0) {
                    Some(' ') | Some('\t') | Some('\x0c') | Some('\r') => {
                        if self.at_line_start {
                            saw_indent = true;
                        }
                        self.bump();
                    }
                    Some('#') => {
                        while let Some(c) = self.peek(0) {
                            if c == '\n' {
                                break;
                            }
                            self.bump();
                        }
                    }
                    Some('\\')
                        if self.peek(1) == Some('\n')
                            || (self.peek(1) == Some('\r') && self.peek(2) == Some('\n')) =>
                    {
                        self.bump();
                        if self.peek(0) == Some('\r') {
                            self.bump();
                        }
                        self.bump();
                        self.at_line_start = false;
                    }
                    Some('\n') => {
                        let p = self.pos();
                        self.bump();
                        if self.depth == 0 && !self.at_line_start {
                            out.push((Tok::Newline, p));
                        }
                        if self.depth == 0 {
                            self.at_line_start = true;
                            saw_indent = false;
                        }
                    }
                    _ => break,
                }
            }
            let pos = self.pos();
            let Some(c) = self.peek(0) else {
                if self.depth > 0 {
                    return self.err(pos, "unexpected end of file: a bracket is not closed");
                }
                if !self.at_line_start {
                    out.push((Tok::Newline, pos));
                }
                out.push((Tok::Eof, pos));
                return Ok(out);
            };
            if self.at_line_start && saw_indent && self.depth == 0 {
                let _ = line_start_pos;
                out.push((Tok::Indent, pos));
            }
            self.at_line_start = false;
            let tok = if c.is_ascii_digit()
                || (c == '.' && self.peek(1).is_some_and(|d| d.is_ascii_digit()))
            {
                self.number()?
            } else if c.is_alphabetic() || c == '_' {
                let mut name = String::new();
                while let Some(c) = self.peek(0).filter(|c| c.is_alphanumeric() || *c == '_') {
                    name.push(c);
                    self.bump();
                }
                let q = self.peek(0);
                let lower = name.to_ascii_lowercase();
                if matches!(q, Some('\'') | Some('"'))
                    && matches!(
                        lower.as_str(),
                        "r" | "u" | "f" | "b" | "rb" | "br" | "fr" | "rf"
                    )
                {
                    if lower.contains('b') {
                        return self.err(
                            pos,
                            "bytes literals are not supported in configs; use a str",
                        );
                    }
                    self.string(lower.contains('r'), lower.contains('f'), pos)?
                } else {
                    Tok::Name(name)
                }
            } else if c == '\'' || c == '"' {
                self.string(false, false, pos)?
            } else {
                let rest: String = self.chars[self.i..self.chars.len().min(self.i + 2)]
                    .iter()
                    .collect();
                let op = OPS.iter().find(|op| rest.starts_with(**op)).copied();
                match op {
                    Some(op) => {
                        for _ in 0..op.chars().count() {
                            self.bump();
                        }
                        match op {
                            "(" | "[" | "{" => self.depth += 1,
                            ")" | "]" | "}" => {
                                if self.depth == 0 {
                                    return self.err(pos, format!("unmatched '{op}'"));
                                }
                                self.depth -= 1;
                            }
                            _ => {}
                        }
                        Tok::Op(op)
                    }
                    None => match OTHER_OPS.iter().find(|o| rest.starts_with(**o)) {
                        Some(o) => {
                            self.bump();
                            Tok::Op(o)
                        }
                        None => return self.err(pos, format!("unexpected character {c:?}")),
                    },
                }
            };
            out.push((tok, pos));
        }
    }

    fn number(&mut self) -> Result<Tok, LexError> {
        let pos = self.pos();
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            let prev = text.chars().last();
            let exp_sign = matches!(c, '+' | '-')
                && matches!(prev, Some('e') | Some('E'))
                && !text.starts_with("0x")
                && !text.starts_with("0X");
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || exp_sign {
                text.push(c);
                self.bump();
            } else {
                break;
            }
        }
        let bad = |s: &Lexer| s.err(pos, format!("invalid number literal '{text}'"));
        if text.ends_with('_') || text.contains("__") || text.ends_with('j') || text.ends_with('J')
        {
            return bad(self);
        }
        let clean: String = text.chars().filter(|c| *c != '_').collect();
        let lower = clean.to_ascii_lowercase();
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(digits) = lower.strip_prefix(prefix) {
                return i64::from_str_radix(digits, radix)
                    .map(Tok::Int)
                    .or_else(|_| bad(self));
            }
        }
        if lower.contains('.') || lower.contains('e') || lower == "inf" {
            return clean.parse::<f64>().map(Tok::Float).or_else(|_| bad(self));
        }
        if lower.len() > 1 && lower.starts_with('0') && lower.chars().any(|c| c != '0') {
            return self.err(pos, format!("invalid number literal '{text}': leading zeros are not allowed (use 0o for octal)"));
        }
        match clean.parse::<i64>() {
            Ok(i) => Ok(Tok::Int(i)),
            Err(_) if clean.chars().all(|c| c.is_ascii_digit()) => {
                self.err(pos, format!("integer '{text}' does not fit in 64 bits"))
            }
            Err(_) => bad(self),
        }
    }

    fn string(&mut self, raw: bool, fstr: bool, start: Pos) -> Result<Tok, LexError> {
        let Some(q) = self.bump() else {
            return self.err(start, "unterminated string");
        };
        let triple = self.peek(0) == Some(q) && self.peek(1) == Some(q);
        if triple {
            self.bump();
            self.bump();
        }
        let mut s = String::new();
        loop {
            let Some(c) = self.peek(0) else {
                return self.err(start, "unterminated string: the closing quote is missing");
            };
            if c == q && (!triple || (self.peek(1) == Some(q) && self.peek(2) == Some(q))) {
                self.bump();
                if triple {
                    self.bump();
                    self.bump();
                }
                break;
            }
            if c == '\n' && !triple {
                return self.err(
                    start,
                    "unterminated string: the closing quote is missing on this line",
                );
            }
            self.bump();
            if c == '\\' {
                let esc_pos = self.pos();
                let Some(e) = self.bump() else {
                    return self.err(start, "unterminated string");
                };
                if raw {
                    s.push('\\');
                    s.push(e);
                    continue;
                }
                match e {
                    '\n' => {}
                    'n' => s.push('\n'),
                    't' => s.push('\t'),
                    'r' => s.push('\r'),
                    '\\' => s.push('\\'),
                    '\'' => s.push('\''),
                    '"' => s.push('"'),
                    'a' => s.push('\x07'),
                    'b' => s.push('\x08'),
                    'f' => s.push('\x0c'),
                    'v' => s.push('\x0b'),
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            match self.peek(0).and_then(|d| d.to_digit(8)) {
                                Some(d) => {
                                    v = v * 8 + d;
                                    self.bump();
                                }
                                None => break,
                            }
                        }
                        s.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                    }
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut v = 0u32;
                        for _ in 0..n {
                            let Some(d) = self.peek(0).and_then(|d| d.to_digit(16)) else {
                                return self.err(esc_pos, format!("truncated \\{e} escape"));
                            };
                            v = v * 16 + d;
                            self.bump();
                        }
                        match char::from_u32(v) {
                            Some(ch) => s.push(ch),
                            None => return self.err(esc_pos, format!("invalid \\{e} escape")),
                        }
                    }
                    other => {
                        s.push('\\');
                        s.push(other);
                    }
                }
            } else {
                s.push(c);
            }
        }
        if fstr {
            return parse_fstring(&s, start).map(Tok::FStr);
        }
        Ok(Tok::Str(s))
    }
}

fn parse_fstring(s: &str, pos: Pos) -> Result<Vec<FPart>, LexError> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '{' if it.peek() == Some(&'{') => {
                it.next();
                text.push('{');
            }
            '}' if it.peek() == Some(&'}') => {
                it.next();
                text.push('}');
            }
            '{' => {
                let mut name = String::new();
                for c in it.by_ref() {
                    if c == '}' {
                        break;
                    }
                    name.push(c);
                }
                let name = name.trim().to_string();
                if name.is_empty()
                    || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
                    || name.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(LexError {
                        pos,
                        msg: format!(
                            "f-string field '{{{name}}}' is not supported: only a plain name such as {{i}} can be interpolated"
                        ),
                    });
                }
                if !text.is_empty() {
                    parts.push(FPart::Text(std::mem::take(&mut text)));
                }
                parts.push(FPart::Name(name, pos));
            }
            '}' => {
                return Err(LexError {
                    pos,
                    msg: "single '}' is not allowed in an f-string".into(),
                });
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        parts.push(FPart::Text(text));
    }
    Ok(parts)
}
