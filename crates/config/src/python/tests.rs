use super::*;

fn one(src: &str) -> Value {
    let m = parse_module(&format!("x = {src}\n")).unwrap_or_else(|e| panic!("{src}: {e:?}"));
    m.into_iter().find(|(n, _, _)| n == "x").unwrap().1
}

fn fails(src: &str) -> SyntaxError {
    parse_module(src).expect_err(src)
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

#[test]
fn literals() {
    assert_eq!(one("1_000"), Value::Int(1000));
    assert_eq!(one("0x1F"), Value::Int(31));
    assert_eq!(one("0o17"), Value::Int(15));
    assert_eq!(one("0b101"), Value::Int(5));
    assert_eq!(one("1e-5"), Value::Float(1e-5));
    assert_eq!(one(".5"), Value::Float(0.5));
    assert_eq!(one("2."), Value::Float(2.0));
    assert_eq!(one("-3"), Value::Int(-3));
    assert_eq!(one("True"), Value::Bool(true));
    assert_eq!(one("None"), Value::None);
    assert_eq!(one("'a' \"b\" '''c'''"), s("abc"));
    assert_eq!(one(r#"'tab\there\n\x41\u00e9\\'"#), s("tab\there\nAé\\"));
    assert_eq!(one(r"r'\d+'"), s(r"\d+"));
    assert_eq!(one("'''multi\nline'''"), s("multi\nline"));
    assert_eq!(one("(1,)"), Value::Tuple(vec![Value::Int(1)]));
    assert_eq!(one("()"), Value::Tuple(vec![]));
    assert_eq!(
        one("1, 2"),
        Value::Tuple(vec![Value::Int(1), Value::Int(2)])
    );
}

#[test]
fn arithmetic() {
    assert_eq!(one("1 << 30"), Value::Int(1 << 30));
    assert_eq!(one("2 * 1024"), Value::Int(2048));
    assert_eq!(one("-7 // 2"), Value::Int(-4));
    assert_eq!(one("-7 % 3"), Value::Int(2));
    assert_eq!(one("7 % -3"), Value::Int(-2));
    assert_eq!(one("1 + 2 * 3"), Value::Int(7));
    assert_eq!(one("(1 + 2) * 3"), Value::Int(9));
    assert_eq!(one("2 ** 10"), Value::Int(1024));
    assert_eq!(one("1 / 2"), Value::Float(0.5));
    assert_eq!(
        one("[1] + [2, 3]"),
        Value::List(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
    );
    assert!(fails("x = 1 << 70\n").msg.contains("overflow"));
    assert!(fails("x = 1 // 0\n").msg.contains("zero"));
}

#[test]
fn dicts_and_comprehensions() {
    let v = one("dict(type='onnxruntime', n=dict(a=1,),)");
    let Value::Dict(d) = v else { panic!() };
    assert_eq!(d.get_str("type"), Some(&s("onnxruntime")));
    let v = one("{'input': {0: 'batch', 2: 'height'}}");
    let Value::Dict(d) = v else { panic!() };
    let Some(Value::Dict(inner)) = d.get_str("input") else {
        panic!()
    };
    assert_eq!(inner.get(&Key::Int(2)), Some(&s("height")));
    let v = one("dict({'a': 1}, b=2)");
    let Value::Dict(d) = v else { panic!() };
    assert_eq!(d.0.len(), 2);
    assert_eq!(
        one("[f'out.{i}' for i in range(3)]"),
        Value::List(vec![s("out.0"), s("out.1"), s("out.2")])
    );
    assert_eq!(
        one("[f'{{x}}{i}' for i in range(1, 3)]"),
        Value::List(vec![s("{x}1"), s("{x}2")])
    );
}

#[test]
fn names_assigned_earlier_are_values() {
    let m = parse_module("a = 3\nb = dict(k=a, s=[a, a * 2])\n").unwrap();
    assert_eq!(m.len(), 2);
    let Value::Dict(d) = &m[1].1 else { panic!() };
    assert_eq!(d.get_str("k"), Some(&Value::Int(3)));
}

#[test]
fn continuations_and_comments() {
    let m =
        parse_module("# c\nx = dict(  # c\n    a=1,\n\n    b=[1,\n 2],  # c\n)\ny = 1 + \\\n 2\n")
            .unwrap();
    assert_eq!(m[1].1, Value::Int(3));
}

#[test]
fn errors_have_positions() {
    let e = fails("x = 'abc\n");
    assert_eq!((e.pos.line, e.pos.col), (1, 5));
    assert!(e.msg.contains("unterminated"), "{e:?}");
    let e = fails("a = 1\n  b = 2\n");
    assert_eq!((e.pos.line, e.pos.col), (2, 3));
    assert!(e.msg.contains("indent"));
    let e = fails("import os\n");
    assert!(e.msg.contains("imports are not supported"));
    let e = fails("x = dict(a=foo)\n");
    assert_eq!((e.pos.line, e.pos.col), (1, 12));
    assert!(e.msg.contains("'foo' is not defined"));
    let e = fails("x = os.path.join('a')\n");
    assert!(e.msg.contains("attribute"), "{e:?}");
    let e = fails("x = len([1])\n");
    assert!(e.msg.contains("'len(...)'"), "{e:?}");
    let e = fails("x = dict(a=1\n");
    assert!(e.msg.contains("not closed"), "{e:?}");
    let e = fails("def f():\n    pass\n");
    assert!(e.msg.contains("'def'"), "{e:?}");
    let e = fails("x = range(3)\n");
    assert!(e.msg.contains("comprehension"), "{e:?}");
    let e = fails("x = 1 +\n");
    assert_eq!(e.pos.line, 1);
}
