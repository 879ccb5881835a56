//! A parser and evaluator for the literal subset of Python that deploy configs use. It never
//! executes code: anything outside the subset is an error with its line and column.

use crate::lexer::{FPart, Lexer, Pos, Tok};
use crate::value::{Dict, Key, Value};
use std::collections::HashMap;

/// A parse or evaluation error with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where.
    pub pos: Pos,
    /// What, with a hint.
    pub msg: String,
}

type R<T> = Result<T, SyntaxError>;

fn err<T>(pos: Pos, msg: impl Into<String>) -> R<T> {
    Err(SyntaxError {
        pos,
        msg: msg.into(),
    })
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Name(String),
    FStr(Vec<FPart>),
    List(Vec<E>),
    Tuple(Vec<E>),
    Dict(Vec<(E, E)>),
    Call {
        name: String,
        args: Vec<E>,
        kwargs: Vec<(String, E)>,
    },
    Bin {
        op: &'static str,
        l: Box<E>,
        r: Box<E>,
    },
    Neg(Box<E>),
    Pos(Box<E>),
    Comp {
        elt: Box<E>,
        var: String,
        iter: Box<E>,
    },
}

#[derive(Debug, Clone)]
struct E {
    e: Expr,
    pos: Pos,
}

struct Parser {
    toks: Vec<(Tok, Pos)>,
    i: usize,
    depth: usize,
}

/// Nesting deeper than this is an error, so no input can exhaust the stack.
const MAX_DEPTH: usize = 64;

/// The marker a `_base_.a.b` reference (or mmengine's `{{ _base_.a.b }}`) becomes in a parsed
/// file: resolved by the loader against the merged bases. A NUL never appears in real configs.
pub const BASE_REF: &str = "\u{0}rdeploy_base_ref:";

/// mmengine's text substitution `{{ _base_.a.b }}` (bare, or as a whole quoted string) written
/// as the expression `_base_.a.b`, which the parser turns into a reference.
fn substitute_base_vars(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            break;
        };
        let inner = after[..end].trim();
        let valid = inner.starts_with("_base_.")
            && inner.len() > "_base_.".len()
            && inner
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            out.push_str(&rest[..start + 2]);
            rest = after;
            continue;
        }
        let mut before = &rest[..start];
        let mut tail = &after[end + 2..];
        // '{{ _base_.x }}' as a whole string: the quotes go too.
        for q in ['\'', '"'] {
            if before.ends_with(q) && tail.starts_with(q) {
                before = &before[..before.len() - 1];
                tail = &tail[1..];
            }
        }
        out.push_str(before);
        out.push_str(inner);
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// Parses a config file's text into its module-level assignments, in order, evaluated.
///
/// # Errors
/// A [`SyntaxError`] for anything outside the supported subset.
/// `_base_.a.b` (and mmengine's `{{ _base_.a.b }}`) become [`BASE_REF`] markers.
pub fn parse_module(src: &str) -> R<Vec<(String, Value, Pos)>> {
    let substituted;
    let src = if src.contains("{{") {
        substituted = substitute_base_vars(src);
        substituted.as_str()
    } else {
        src
    };
    let toks = Lexer::new(src).tokens().map_err(|e| SyntaxError {
        pos: e.pos,
        msg: e.msg,
    })?;
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    let mut env: HashMap<String, Value> = HashMap::new();
    let mut out: Vec<(String, Value, Pos)> = Vec::new();
    loop {
        let (tok, pos) = p.peek().clone();
        match tok {
            Tok::Eof => return Ok(out),
            Tok::Newline => {
                p.i += 1;
            }
            Tok::Indent => {
                return err(
                    pos,
                    "unexpected indent: top-level assignments start in column 1",
                );
            }
            Tok::Name(name) => {
                if matches!(name.as_str(), "import" | "from") {
                    return err(
                        pos,
                        "imports are not supported: rdeploy reads configs as data and never executes them; remove the import (use _base_ = [...] to inherit)",
                    );
                }
                if is_keyword(&name) {
                    return err(
                        pos,
                        format!(
                            "'{name}' statements are not supported: a config holds only assignments of literal values (name = value)"
                        ),
                    );
                }
                p.i += 1;
                match p.peek().0 {
                    Tok::Op("=") => {
                        p.i += 1;
                    }
                    Tok::Op(".") => {
                        return err(
                            p.peek().1,
                            "attribute access is not supported in configs: a config holds only assignments of literal values",
                        );
                    }
                    Tok::Op("(") => {
                        return err(
                            pos,
                            format!(
                                "function call '{name}(...)' is not supported as a statement: a config holds only assignments (name = value)"
                            ),
                        );
                    }
                    _ => {
                        return err(
                            p.peek().1,
                            format!(
                                "expected '=' after '{name}': a config holds only assignments (name = value)"
                            ),
                        );
                    }
                }
                let e = p.expr_or_tuple()?;
                if matches!(p.peek().0, Tok::Op("=")) {
                    return err(
                        p.peek().1,
                        "chained assignment (a = b = value) is not supported",
                    );
                }
                match p.peek().0 {
                    Tok::Newline | Tok::Eof => {}
                    Tok::Op(";") => {
                        return err(
                            p.peek().1,
                            "';' is not supported: put one assignment per line",
                        );
                    }
                    _ => {
                        return err(
                            p.peek().1,
                            format!(
                                "unexpected {} after the value of '{name}'",
                                describe(&p.peek().0)
                            ),
                        );
                    }
                }
                let v = eval(&e, &env, &HashMap::new())?;
                env.insert(name.clone(), v.clone());
                match out.iter_mut().find(|(n, _, _)| *n == name) {
                    Some(slot) => {
                        slot.1 = v;
                    }
                    None => out.push((name, v, pos)),
                }
            }
            other => {
                return err(
                    pos,
                    format!(
                        "unexpected {}: a config holds only assignments (name = value)",
                        describe(&other)
                    ),
                );
            }
        }
    }
}

fn is_keyword(n: &str) -> bool {
    matches!(
        n,
        "def"
            | "class"
            | "if"
            | "for"
            | "while"
            | "with"
            | "try"
            | "return"
            | "del"
            | "assert"
            | "lambda"
            | "global"
            | "nonlocal"
            | "pass"
            | "raise"
            | "yield"
            | "async"
            | "await"
            | "print"
    )
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Name(n) => format!("name '{n}'"),
        Tok::Int(i) => format!("number {i}"),
        Tok::Float(f) => format!("number {f}"),
        Tok::Str(_) | Tok::FStr(_) => "string".into(),
        Tok::Op(o) => format!("'{o}'"),
        Tok::Newline => "end of line".into(),
        Tok::Indent => "indentation".into(),
        Tok::Eof => "end of file".into(),
    }
}

impl Parser {
    fn peek(&self) -> &(Tok, Pos) {
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(&self.peek().0, Tok::Op(o) if *o == op) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, op: &str, what: &str) -> R<()> {
        if self.eat(op) {
            Ok(())
        } else {
            let (t, pos) = self.peek().clone();
            err(
                pos,
                format!("expected '{op}' {what}, found {}", describe(&t)),
            )
        }
    }

    /// `a, b` at top level is a tuple, as in Python.
    fn expr_or_tuple(&mut self) -> R<E> {
        let first = self.expr()?;
        if !matches!(self.peek().0, Tok::Op(",")) {
            return Ok(first);
        }
        let pos = first.pos;
        let mut items = vec![first];
        while self.eat(",") {
            if matches!(self.peek().0, Tok::Newline | Tok::Eof) {
                break;
            }
            items.push(self.expr()?);
        }
        Ok(E {
            e: Expr::Tuple(items),
            pos,
        })
    }

    fn expr(&mut self) -> R<E> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(
                self.peek().1,
                format!("values nested more than {MAX_DEPTH} deep are not supported"),
            );
        }
        let r = self.binary(0);
        self.depth -= 1;
        r
    }

    fn binary(&mut self, level: usize) -> R<E> {
        const LEVELS: [&[&str]; 3] = [&["<<", ">>"], &["+", "-"], &["*", "//", "/", "%"]];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut l = self.binary(level + 1)?;
        loop {
            let op = match &self.peek().0 {
                Tok::Op(o) if LEVELS[level].contains(o) => *o,
                Tok::Op(o @ ("|" | "&" | "<" | ">" | "==" | "!=" | "<=" | ">=" | "@"))
                    if level == 0 =>
                {
                    return err(
                        self.peek().1,
                        format!(
                            "operator '{o}' is not supported in configs (only + - * // / % << >> ** on literals)"
                        ),
                    );
                }
                _ => return Ok(l),
            };
            let pos = self.peek().1;
            self.i += 1;
            let r = self.binary(level + 1)?;
            l = E {
                e: Expr::Bin {
                    op,
                    l: Box::new(l),
                    r: Box::new(r),
                },
                pos,
            };
        }
    }

    fn unary(&mut self) -> R<E> {
        let pos = self.peek().1;
        if matches!(self.peek().0, Tok::Op("-" | "+")) {
            let neg = self.eat("-");
            if !neg {
                self.eat("+");
            }
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return err(
                    pos,
                    format!("more than {MAX_DEPTH} unary operators in a row are not supported"),
                );
            }
            let inner = self.unary();
            self.depth -= 1;
            let inner = Box::new(inner?);
            let e = if neg {
                Expr::Neg(inner)
            } else {
                Expr::Pos(inner)
            };
            return Ok(E { e, pos });
        }
        if matches!(self.peek().0, Tok::Op("~")) {
            return err(pos, "operator '~' is not supported in configs");
        }
        let base = self.atom()?;
        if matches!(self.peek().0, Tok::Op("**")) {
            let p = self.peek().1;
            self.i += 1;
            let exp = self.unary()?;
            return Ok(E {
                e: Expr::Bin {
                    op: "**",
                    l: Box::new(base),
                    r: Box::new(exp),
                },
                pos: p,
            });
        }
        Ok(base)
    }

    fn atom(&mut self) -> R<E> {
        let (tok, pos) = self.peek().clone();
        self.i += 1;
        let e = match tok {
            Tok::Int(i) => Expr::Lit(Value::Int(i)),
            Tok::Float(f) => Expr::Lit(Value::Float(f)),
            Tok::Str(s) => {
                // Adjacent literals concatenate ('a' 'b' == 'ab').
                let mut s = s;
                let mut parts: Option<Vec<FPart>> = None;
                loop {
                    match self.peek().0.clone() {
                        Tok::Str(t) => match parts.as_mut() {
                            Some(p) => p.push(FPart::Text(t)),
                            None => s.push_str(&t),
                        },
                        Tok::FStr(f) => parts
                            .get_or_insert_with(|| vec![FPart::Text(std::mem::take(&mut s))])
                            .extend(f),
                        _ => break,
                    }
                    self.i += 1;
                }
                match parts {
                    Some(p) => Expr::FStr(p),
                    None => Expr::Lit(Value::Str(s)),
                }
            }
            Tok::FStr(mut parts) => {
                loop {
                    match self.peek().0.clone() {
                        Tok::Str(t) => parts.push(FPart::Text(t)),
                        Tok::FStr(f) => parts.extend(f),
                        _ => break,
                    }
                    self.i += 1;
                }
                Expr::FStr(parts)
            }
            Tok::Name(n) => match n.as_str() {
                "True" => Expr::Lit(Value::Bool(true)),
                "False" => Expr::Lit(Value::Bool(false)),
                "None" => Expr::Lit(Value::None),
                _ if is_keyword(&n)
                    || matches!(
                        n.as_str(),
                        "import" | "from" | "not" | "and" | "or" | "in" | "is"
                    ) =>
                {
                    return err(pos, format!("'{n}' is not supported in config values"));
                }
                _ => {
                    if matches!(self.peek().0, Tok::Op("(")) {
                        self.i += 1;
                        return self.call(n, pos);
                    }
                    if n == "_base_" && matches!(self.peek().0, Tok::Op(".")) {
                        // mmengine's reference to a value of the merged bases: kept as a
                        // marker, resolved by the loader once the bases are merged.
                        let mut path = Vec::new();
                        while self.eat(".") {
                            let (t, p) = self.peek().clone();
                            match t {
                                Tok::Name(k) => {
                                    self.i += 1;
                                    path.push(k);
                                }
                                _ => return err(p, "expected a key name after '_base_.'"),
                            }
                        }
                        return Ok(E {
                            e: Expr::Lit(Value::Str(format!("{BASE_REF}{}", path.join(".")))),
                            pos,
                        });
                    }
                    if matches!(self.peek().0, Tok::Op(".")) {
                        return err(
                            self.peek().1,
                            format!(
                                "attribute access '{n}.…' is not supported in configs (rdeploy does not execute Python); only '_base_.key' references to inherited values are"
                            ),
                        );
                    }
                    Expr::Name(n)
                }
            },
            Tok::Op("(") => {
                if self.eat(")") {
                    Expr::Tuple(vec![])
                } else {
                    let first = self.expr()?;
                    if self.eat(")") {
                        return Ok(first);
                    }
                    let mut items = vec![first];
                    while self.eat(",") {
                        if matches!(self.peek().0, Tok::Op(")")) {
                            break;
                        }
                        items.push(self.expr()?);
                    }
                    self.expect(")", "to close the tuple")?;
                    Expr::Tuple(items)
                }
            }
            Tok::Op("[") => {
                if self.eat("]") {
                    Expr::List(vec![])
                } else {
                    let first = self.expr()?;
                    if matches!(&self.peek().0, Tok::Name(n) if n == "for") {
                        self.i += 1;
                        let (vt, vp) = self.peek().clone();
                        let Tok::Name(var) = vt else {
                            return err(vp, "expected a loop variable name after 'for'");
                        };
                        self.i += 1;
                        if !matches!(&self.peek().0, Tok::Name(n) if n == "in") {
                            return err(self.peek().1, "expected 'in' in the list comprehension");
                        }
                        self.i += 1;
                        let iter = self.expr()?;
                        if matches!(&self.peek().0, Tok::Name(n) if n == "if" || n == "for") {
                            return err(
                                self.peek().1,
                                "only [expr for name in range(...)] comprehensions are supported",
                            );
                        }
                        self.expect("]", "to close the list comprehension")?;
                        return Ok(E {
                            e: Expr::Comp {
                                elt: Box::new(first),
                                var,
                                iter: Box::new(iter),
                            },
                            pos,
                        });
                    }
                    let mut items = vec![first];
                    while self.eat(",") {
                        if matches!(self.peek().0, Tok::Op("]")) {
                            break;
                        }
                        items.push(self.expr()?);
                    }
                    self.expect("]", "to close the list")?;
                    Expr::List(items)
                }
            }
            Tok::Op("{") => {
                let mut items = Vec::new();
                while !self.eat("}") {
                    if matches!(self.peek().0, Tok::Op("**")) {
                        return err(self.peek().1, "'**' unpacking is not supported in configs");
                    }
                    let k = self.expr()?;
                    if !matches!(self.peek().0, Tok::Op(":")) {
                        return err(
                            self.peek().1,
                            "expected ':' after a dict key (sets are not supported)",
                        );
                    }
                    self.i += 1;
                    let v = self.expr()?;
                    items.push((k, v));
                    if !self.eat(",") {
                        self.expect("}", "to close the dict")?;
                        break;
                    }
                }
                Expr::Dict(items)
            }
            other => return err(pos, format!("expected a value, found {}", describe(&other))),
        };
        Ok(E { e, pos })
    }

    fn call(&mut self, name: String, pos: Pos) -> R<E> {
        if !matches!(name.as_str(), "dict" | "range") {
            return err(
                pos,
                format!(
                    "function call '{name}(...)' is not supported in configs: only dict(...) and range(...) in a list comprehension are (rdeploy never executes a config)"
                ),
            );
        }
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        while !self.eat(")") {
            if matches!(self.peek().0, Tok::Op("**") | Tok::Op("*")) {
                return err(
                    self.peek().1,
                    "'*'/'**' unpacking is not supported in configs",
                );
            }
            let is_kw = matches!(self.peek().0, Tok::Name(_))
                && matches!(self.toks.get(self.i + 1).map(|t| &t.0), Some(Tok::Op("=")));
            if is_kw {
                let (Tok::Name(k), kpos) = self.peek().clone() else {
                    unreachable!()
                };
                self.i += 2;
                if kwargs.iter().any(|(kk, _): &(String, E)| *kk == k) {
                    return err(kpos, format!("keyword argument '{k}' repeated"));
                }
                kwargs.push((k, self.expr()?));
            } else {
                if !kwargs.is_empty() {
                    return err(
                        self.peek().1,
                        "positional argument follows keyword argument",
                    );
                }
                args.push(self.expr()?);
            }
            if !self.eat(",") {
                self.expect(")", &format!("to close {name}(...)"))?;
                break;
            }
        }
        Ok(E {
            e: Expr::Call { name, args, kwargs },
            pos,
        })
    }
}

fn eval(e: &E, env: &HashMap<String, Value>, locals: &HashMap<String, Value>) -> R<Value> {
    let pos = e.pos;
    Ok(match &e.e {
        Expr::Lit(v) => v.clone(),
        Expr::Name(n) => match locals.get(n).or_else(|| env.get(n)) {
            Some(v) => v.clone(),
            None => {
                return err(
                    pos,
                    format!(
                        "name '{n}' is not defined in this file (rdeploy evaluates only literals and names assigned earlier in the same file; quote it if it is a string)"
                    ),
                );
            }
        },
        Expr::FStr(parts) => {
            let mut s = String::new();
            for p in parts {
                match p {
                    FPart::Text(t) => s.push_str(t),
                    FPart::Name(n, p) => match locals.get(n).or_else(|| env.get(n)) {
                        Some(Value::Str(v)) => s.push_str(v),
                        Some(Value::Int(i)) => s.push_str(&i.to_string()),
                        Some(other) => {
                            return err(
                                *p,
                                format!(
                                    "f-string field '{n}' is a {}; only str and int can be interpolated",
                                    other.type_name()
                                ),
                            );
                        }
                        None => {
                            return err(*p, format!("name '{n}' in the f-string is not defined"));
                        }
                    },
                }
            }
            Value::Str(s)
        }
        Expr::List(items) => Value::List(
            items
                .iter()
                .map(|i| eval(i, env, locals))
                .collect::<R<_>>()?,
        ),
        Expr::Tuple(items) => Value::Tuple(
            items
                .iter()
                .map(|i| eval(i, env, locals))
                .collect::<R<_>>()?,
        ),
        Expr::Dict(items) => {
            let mut d = Dict::default();
            for (k, v) in items {
                let key = to_key(eval(k, env, locals)?, k.pos)?;
                d.insert(key, eval(v, env, locals)?);
            }
            Value::Dict(d)
        }
        Expr::Call { name, args, kwargs } if name == "dict" => {
            let mut d = match args.as_slice() {
                [] => Dict::default(),
                [one] => match eval(one, env, locals)? {
                    Value::Dict(d) => d,
                    other => {
                        return err(
                            one.pos,
                            format!(
                                "dict(...) takes a dict as its positional argument, not a {}",
                                other.type_name()
                            ),
                        );
                    }
                },
                _ => return err(pos, "dict(...) takes at most one positional argument"),
            };
            for (k, v) in kwargs {
                d.insert(Key::Str(k.clone()), eval(v, env, locals)?);
            }
            Value::Dict(d)
        }
        Expr::Call { .. } => {
            return err(
                pos,
                "range(...) is supported only as the iterable of a list comprehension: [f'x{i}' for i in range(N)]",
            );
        }
        Expr::Comp { elt, var, iter } => {
            let values = match &iter.e {
                Expr::Call { name, args, kwargs } if name == "range" && kwargs.is_empty() => {
                    let ints = args
                        .iter()
                        .map(|a| match eval(a, env, locals)? {
                            Value::Int(i) => Ok(i),
                            other => err(
                                a.pos,
                                format!("range() takes ints, not {}", other.type_name()),
                            ),
                        })
                        .collect::<R<Vec<i64>>>()?;
                    let (start, stop, step) = match ints.as_slice() {
                        [n] => (0, *n, 1),
                        [a, b] => (*a, *b, 1),
                        [a, b, s] => (*a, *b, *s),
                        _ => return err(iter.pos, "range() takes 1 to 3 arguments"),
                    };
                    if step == 0 {
                        return err(iter.pos, "range() step must not be zero");
                    }
                    let count = if step > 0 {
                        (stop - start).max(0) / step + i64::from((stop - start).max(0) % step != 0)
                    } else {
                        (start - stop).max(0) / -step
                            + i64::from((start - stop).max(0) % -step != 0)
                    };
                    if count > 1_000_000 {
                        return err(
                            iter.pos,
                            "range() is too long for a config (over 1,000,000 items)",
                        );
                    }
                    (0..count)
                        .map(|k| Value::Int(start + k * step))
                        .collect::<Vec<_>>()
                }
                _ => match eval(iter, env, locals)? {
                    Value::List(v) | Value::Tuple(v) => v,
                    other => {
                        return err(
                            iter.pos,
                            format!(
                                "cannot iterate over a {} in a comprehension",
                                other.type_name()
                            ),
                        );
                    }
                },
            };
            let mut out = Vec::with_capacity(values.len());
            let mut inner = locals.clone();
            for v in values {
                inner.insert(var.clone(), v);
                out.push(eval(elt, env, &inner)?);
            }
            Value::List(out)
        }
        Expr::Neg(x) => match eval(x, env, locals)? {
            Value::Int(i) => Value::Int(i.checked_neg().ok_or_else(|| SyntaxError {
                pos,
                msg: "integer overflow".into(),
            })?),
            Value::Float(f) => Value::Float(-f),
            Value::Bool(b) => Value::Int(-i64::from(b)),
            other => return err(pos, format!("cannot negate a {}", other.type_name())),
        },
        Expr::Pos(x) => match eval(x, env, locals)? {
            v @ (Value::Int(_) | Value::Float(_)) => v,
            Value::Bool(b) => Value::Int(i64::from(b)),
            other => {
                return err(
                    pos,
                    format!("unary '+' does not apply to a {}", other.type_name()),
                );
            }
        },
        Expr::Bin { op, l, r } => binop(op, eval(l, env, locals)?, eval(r, env, locals)?, pos)?,
    })
}

fn to_key(v: Value, pos: Pos) -> R<Key> {
    match v {
        Value::Str(s) => Ok(Key::Str(s)),
        Value::Int(i) => Ok(Key::Int(i)),
        Value::Bool(b) => Ok(Key::Int(i64::from(b))),
        other => err(
            pos,
            format!(
                "dict keys must be str or int in configs, not {}",
                other.type_name()
            ),
        ),
    }
}

fn binop(op: &str, l: Value, r: Value, pos: Pos) -> R<Value> {
    let overflow = || SyntaxError {
        pos,
        msg: format!("integer overflow in '{op}' (configs use 64-bit integers)"),
    };
    let as_int = |v: &Value| match v {
        Value::Int(i) => Some(*i),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    };
    if let (Some(a), Some(b)) = (as_int(&l), as_int(&r)) {
        let v = match op {
            "+" => a.checked_add(b).ok_or_else(overflow)?,
            "-" => a.checked_sub(b).ok_or_else(overflow)?,
            "*" => a.checked_mul(b).ok_or_else(overflow)?,
            "//" | "%" => {
                if b == 0 {
                    return err(pos, "integer division or modulo by zero");
                }
                let mut q = a.checked_div(b).ok_or_else(overflow)?;
                if a % b != 0 && ((a < 0) != (b < 0)) {
                    q -= 1;
                }
                if op == "//" { q } else { a - q * b }
            }
            "/" => {
                if b == 0 {
                    return err(pos, "division by zero");
                }
                return Ok(Value::Float(a as f64 / b as f64));
            }
            "<<" => {
                if b < 0 {
                    return err(pos, "negative shift count");
                }
                if b >= 64 || (a != 0 && (a.unsigned_abs().leading_zeros() as i64) <= b) {
                    return Err(overflow());
                }
                a << b
            }
            ">>" => {
                if b < 0 {
                    return err(pos, "negative shift count");
                }
                a >> b.min(63)
            }
            "**" => {
                if b < 0 {
                    return Ok(Value::Float((a as f64).powf(b as f64)));
                }
                let e = u32::try_from(b).map_err(|_| overflow())?;
                a.checked_pow(e).ok_or_else(overflow)?
            }
            _ => return err(pos, format!("operator '{op}' is not supported")),
        };
        return Ok(Value::Int(v));
    }
    let as_f = |v: &Value| match v {
        Value::Float(f) => Some(*f),
        other => as_int(other).map(|i| i as f64),
    };
    match (&l, &r) {
        (Value::Float(_), _) | (_, Value::Float(_)) if as_f(&l).is_some() && as_f(&r).is_some() => {
            let (a, b) = (as_f(&l).unwrap_or(0.0), as_f(&r).unwrap_or(0.0));
            let v = match op {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                "/" | "//" | "%" if b == 0.0 => return err(pos, "float division by zero"),
                "/" => a / b,
                "//" => (a / b).floor(),
                "%" => a - (a / b).floor() * b,
                "**" => a.powf(b),
                _ => return err(pos, format!("operator '{op}' does not apply to floats")),
            };
            Ok(Value::Float(v))
        }
        (Value::Str(a), Value::Str(b)) if op == "+" => Ok(Value::Str(format!("{a}{b}"))),
        (Value::List(a), Value::List(b)) if op == "+" => {
            Ok(Value::List([a.clone(), b.clone()].concat()))
        }
        (Value::Tuple(a), Value::Tuple(b)) if op == "+" => {
            Ok(Value::Tuple([a.clone(), b.clone()].concat()))
        }
        _ => err(
            pos,
            format!(
                "operator '{op}' does not apply to {} and {}",
                l.type_name(),
                r.type_name()
            ),
        ),
    }
}

#[cfg(test)]
mod tests;
