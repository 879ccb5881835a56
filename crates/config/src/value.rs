//! The config tree: Python literal values, with dict keys and tuples kept as written.

use serde_json::Value as Json;

/// A dict key: configs use string keys, and int keys in places like `dynamic_axes`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// A string key.
    Str(String),
    /// An integer key (`{0: 'batch'}`).
    Int(i64),
}

impl Key {
    /// The key as JSON writes it (int keys become strings, as `json.dumps` does).
    pub fn to_json_key(&self) -> String {
        match self {
            Key::Str(s) => s.clone(),
            Key::Int(i) => i.to_string(),
        }
    }
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Str(s) => write!(f, "{}", Value::Str(s.clone())),
            Key::Int(i) => write!(f, "{i}"),
        }
    }
}

/// An insertion-ordered dict, like Python's.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Dict(pub Vec<(Key, Value)>);

impl Dict {
    /// The value of a key.
    pub fn get(&self, k: &Key) -> Option<&Value> {
        self.0.iter().find(|(kk, _)| kk == k).map(|(_, v)| v)
    }

    /// The value of a string key.
    pub fn get_str(&self, k: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(kk, _)| matches!(kk, Key::Str(s) if s == k))
            .map(|(_, v)| v)
    }

    /// Sets a key: replaces in place if present (keeping its position), else appends.
    pub fn insert(&mut self, k: Key, v: Value) {
        match self.0.iter_mut().find(|(kk, _)| *kk == k) {
            Some(slot) => slot.1 = v,
            None => self.0.push((k, v)),
        }
    }

    /// Removes a key, returning its value.
    pub fn remove(&mut self, k: &Key) -> Option<Value> {
        let i = self.0.iter().position(|(kk, _)| kk == k)?;
        Some(self.0.remove(i).1)
    }

    /// Whether the dict has a key.
    pub fn contains(&self, k: &Key) -> bool {
        self.get(k).is_some()
    }

    /// The keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.0.iter().map(|(k, _)| k)
    }
}

/// A config value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A tuple (written as a list in JSON).
    Tuple(Vec<Value>),
    /// A dict.
    Dict(Dict),
}

impl Value {
    /// Python's name for this value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Dict(_) => "dict",
        }
    }

    /// The value as JSON: what `json.dumps(cfg.to_dict())` writes (tuples as lists, int keys
    /// as strings; ints stay ints and floats stay floats).
    pub fn to_json(&self) -> Json {
        match self {
            Value::None => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or_else(|| {
                    // JSON has no NaN/Infinity; Python's json.dumps writes them bare. Keep the text.
                    Json::String(if f.is_nan() {
                        "NaN".into()
                    } else if *f > 0.0 {
                        "Infinity".into()
                    } else {
                        "-Infinity".into()
                    })
                }),
            Value::Str(s) => Json::String(s.clone()),
            Value::List(v) | Value::Tuple(v) => Json::Array(v.iter().map(Value::to_json).collect()),
            Value::Dict(d) => Json::Object(
                d.0.iter()
                    .map(|(k, v)| (k.to_json_key(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// A value from JSON (objects keep their key order; numbers stay int or float).
    pub fn from_json(j: &Json) -> Value {
        match j {
            Json::Null => Value::None,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Value::Str(s.clone()),
            Json::Array(a) => Value::List(a.iter().map(Value::from_json).collect()),
            Json::Object(o) => Value::Dict(Dict(
                o.iter()
                    .map(|(k, v)| (Key::Str(k.clone()), Value::from_json(v)))
                    .collect(),
            )),
        }
    }
}

impl std::fmt::Display for Value {
    /// The value as a Python literal (for messages).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn seq(
            f: &mut std::fmt::Formatter<'_>,
            items: &[Value],
            open: &str,
            close: &str,
        ) -> std::fmt::Result {
            f.write_str(open)?;
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            if open == "(" && items.len() == 1 {
                f.write_str(",")?;
            }
            f.write_str(close)
        }
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(b) => f.write_str(if *b { "True" } else { "False" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Str(s) => {
                f.write_str("'")?;
                for c in s.chars() {
                    match c {
                        '\\' => f.write_str("\\\\")?,
                        '\'' => f.write_str("\\'")?,
                        '\n' => f.write_str("\\n")?,
                        '\r' => f.write_str("\\r")?,
                        '\t' => f.write_str("\\t")?,
                        c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                            write!(f, "\\x{:02x}", c as u32)?
                        }
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("'")
            }
            Value::List(v) => seq(f, v, "[", "]"),
            Value::Tuple(v) => seq(f, v, "(", ")"),
            Value::Dict(d) => {
                f.write_str("{")?;
                for (i, (k, v)) in d.0.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}
