//! Property tests: generated configs round-trip through their Python text; no input makes the
//! parser panic, hang or overflow the stack.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a test failure"
)]

use proptest::prelude::*;
use rdeploy_config::{Dict, Key, Value, parse_module};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        (i64::MIN + 1..=i64::MAX).prop_map(Value::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::Float),
        any::<String>().prop_map(Value::Str),
    ]
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,8}".prop_map(Key::Str),
        any::<String>().prop_map(Key::Str),
        (-1000i64..1000).prop_map(Key::Int)
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| {
                let mut d = Dict::default();
                for (k, v) in kv {
                    d.insert(k, v);
                }
                Value::Dict(d)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn python_text_round_trips(entries in prop::collection::vec(("[a-z][a-z0-9_]{0,6}", value()), 1..5)) {
        let mut want: Vec<(String, Value)> = Vec::new();
        let mut text = String::new();
        for (name, v) in entries {
            if ["True", "False", "None", "import", "from", "def", "class", "if", "for", "while", "with", "try", "return", "del", "assert", "lambda", "global", "nonlocal", "pass", "raise", "yield", "async", "await", "print", "not", "and", "or", "in", "is"].contains(&name.as_str()) {
                continue;
            }
            text.push_str(&format!("{name} = {v}\n"));
            match want.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = v,
                None => want.push((name, v)),
            }
        }
        let got = parse_module(&text).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        let got: Vec<(String, Value)> = got.into_iter().map(|(n, v, _)| (n, v)).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        let _ = parse_module(&s);
    }

    #[test]
    fn config_like_text_never_panics(s in "[a-z_ =\\[\\](){}:,'\"0-9.+*/<>%#\\n\\\\-]{0,200}") {
        let _ = parse_module(&s);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for (open, close) in [
        ("[", "]"),
        ("(", ")"),
        ("{'a': ", "}"),
        ("-", ""),
        ("dict(a=", ")"),
    ] {
        let text = format!("x = {}1{}\n", open.repeat(100_000), close.repeat(100_000));
        let e = parse_module(&text).unwrap_err();
        assert!(e.msg.contains("64"), "{open}: {e:?}");
    }
}
