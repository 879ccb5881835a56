use super::*;
use serde_json::json;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bases_merge_like_mmengine() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "_base_/onnx.py",
        "onnx_config = dict(type='onnx', opset_version=11, input_names=['input'], output_names=['output'], input_shape=None)\n",
    );
    write(
        d.path(),
        "_base_/be.py",
        "backend_config = dict(type='tract', common_config=dict(a=1, b=2))\n",
    );
    let p = write(
        d.path(),
        "cfg.py",
        "_base_ = ['./_base_/onnx.py', './_base_/be.py']\nonnx_config = dict(dynamic_axes={'input': {0: 'batch'}})\nbackend_config = dict(common_config=dict(_delete_=True, c=3))\ncodebase_config = dict(type='mmpretrain')\n",
    );
    let c = Config::from_file(&p).unwrap();
    assert_eq!(
        c.to_json(),
        json!({
            "onnx_config": {"type": "onnx", "opset_version": 11, "input_names": ["input"], "output_names": ["output"], "input_shape": null, "dynamic_axes": {"input": {"0": "batch"}}},
            "backend_config": {"type": "tract", "common_config": {"c": 3}},
            "codebase_config": {"type": "mmpretrain"}
        })
    );
    let o = c.onnx_config().unwrap();
    assert_eq!(
        o.dynamic_axes,
        vec![("input".to_string(), vec![(0, "batch".to_string())])]
    );
    assert_eq!(o.save_file, "end2end.onnx");
}

#[test]
fn inheritance_errors() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.py", "_base_ = './b.py'\n");
    write(d.path(), "b.py", "_base_ = './a.py'\n");
    let e = Config::from_file(&d.path().join("a.py"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cycle") && e.contains("a.py -> ") && e.contains("b.py"),
        "{e}"
    );
    let p = write(d.path(), "m.py", "_base_ = ['./nope.py']\n");
    let e = Config::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("m.py:1") && e.contains("nope.py"), "{e}");
    write(d.path(), "x.py", "k = dict(a=1)\n");
    write(d.path(), "y.py", "k = dict(b=1)\n");
    let p = write(d.path(), "dup.py", "_base_ = ['./x.py', './y.py']\n");
    let e = Config::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("'k'") && e.contains("two bases"), "{e}");
    write(d.path(), "l.py", "k = [1, 2]\n");
    let p = write(d.path(), "t.py", "_base_ = './l.py'\nk = dict(a=1)\n");
    let e = Config::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("key 'k'") && e.contains("_delete_"), "{e}");
    let e = Config::from_file(&d.path().join("missing.py"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.py") && e.contains("not found"), "{e}");
}

#[test]
fn toml_and_json_mix_with_python() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "base.py",
        "backend_config = dict(type='tract')\nonnx_config = dict(opset_version=11)\n",
    );
    let p = write(
        d.path(),
        "c.toml",
        "_base_ = ['base.py']\n[onnx_config]\ninput_names = ['input']\n",
    );
    let c = Config::from_file(&p).unwrap();
    assert_eq!(
        c.to_json(),
        json!({"backend_config": {"type": "tract"}, "onnx_config": {"opset_version": 11, "input_names": ["input"]}})
    );
    let p = write(
        d.path(),
        "c.json",
        r#"{"_base_": "./c.toml", "onnx_config": {"opset_version": 13}}"#,
    );
    let c = Config::from_file(&p).unwrap();
    assert_eq!(c.onnx_config().unwrap().opset_version, Some(13));
    let p = write(d.path(), "bad.toml", "a = [1,\n");
    let e = Config::from_file(&p).unwrap_err().to_string();
    assert!(e.contains("bad.toml:") && e.contains("TOML"), "{e}");
}

#[test]
fn typed_keys_are_validated() {
    let d = tempfile::tempdir().unwrap();
    let cfg = |text: &str| Config::from_file(&write(d.path(), "c.py", text)).unwrap();
    let e = cfg("onnx_config = dict(input_shape='big')\n")
        .onnx_config()
        .unwrap_err()
        .to_string();
    assert!(e.contains("onnx_config.input_shape"), "{e}");
    let e = cfg("onnx_config = dict(dynamic_axes={'input': {'a': 'b'}})\n")
        .onnx_config()
        .unwrap_err()
        .to_string();
    assert!(e.contains("onnx_config.dynamic_axes.input"), "{e}");
    let e = cfg("onnx_config = dict(save_file='../x.onnx')\n")
        .onnx_config()
        .unwrap_err()
        .to_string();
    assert!(e.contains("save_file"), "{e}");
    let e = cfg("x = 1\n").backend_type().unwrap_err().to_string();
    assert!(
        e.contains("backend_config.type") && e.contains("missing"),
        "{e}"
    );
    let o = cfg("onnx_config = dict(input_shape=[224, 192], dynamic_axes=dict(input=[0, 2]))\n")
        .onnx_config()
        .unwrap();
    assert_eq!(o.input_shape, Some(InputShape::WidthHeight(224, 192)));
    assert_eq!(
        o.dynamic_axes[0].1,
        vec![
            (0, "input_dynamic_axes_1".into()),
            (2, "input_dynamic_axes_3".into())
        ]
    );
    let o = cfg("onnx_config = dict(input_shape=[1, 3, 8, 8])\n")
        .onnx_config()
        .unwrap();
    assert_eq!(
        o.input_shape,
        Some(InputShape::Full(vec![vec![1, 3, 8, 8]]))
    );
}

#[test]
fn model_inputs_are_typed_and_static_ranges_fix_shapes() {
    let d = tempfile::tempdir().unwrap();
    let p = write(
        d.path(),
        "m.py",
        "backend_config = dict(type='tensorrt', model_inputs=[dict(input_shapes=dict(input=dict(min_shape=[1, 3, 8, 8], opt_shape=[1, 3, 8, 8], max_shape=[1, 3, 8, 8]), other=dict(min_shape=[1, 2], opt_shape=[4, 2], max_shape=[8, 2]))), dict(opt_shapes=dict(input=[2, 3, 16, 16]))])\ncodebase_config = dict(type='mmdet', task='ObjectDetection')\n",
    );
    let c = Config::from_file(&p).unwrap();
    let mi = c.model_inputs().unwrap();
    assert_eq!(mi.len(), 2);
    assert_eq!(mi[0].input_shapes[1].1.max, Some(vec![8, 2]));
    assert_eq!(
        mi[1].opt_shapes,
        vec![("input".to_string(), vec![2, 3, 16, 16])]
    );
    assert_eq!(
        c.onnx_config().unwrap().static_shapes,
        vec![("input".to_string(), vec![1, 3, 8, 8])]
    );
    assert_eq!(
        c.codebase_summary().as_deref(),
        Some("mmdet/ObjectDetection")
    );
    let p = write(
        d.path(),
        "bad.py",
        "backend_config = dict(model_inputs=[dict(opt_shapes=dict(input=[1, 'x']))])\n",
    );
    let e = Config::from_file(&p)
        .unwrap()
        .model_inputs()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("backend_config.model_inputs[0].opt_shapes.input"),
        "{e}"
    );
    // MMDeploy's TVM configs give the shape to compile for as `shape` (with `dtype`, `tuner`).
    let p = write(
        d.path(),
        "tvm.py",
        "backend_config = dict(type='tvm', model_inputs=[dict(shape=dict(input=[1, 3, 224, 224]), dtype=dict(input='float32'))])\n",
    );
    let c = Config::from_file(&p).unwrap();
    let mi = c.model_inputs().unwrap();
    assert_eq!(
        mi[0].opt_shapes,
        vec![("input".to_string(), vec![1, 3, 224, 224])]
    );
    // A plain shape in input_shapes is one fixed shape too.
    let p = write(
        d.path(),
        "plain.py",
        "backend_config = dict(type='ncnn', model_inputs=[dict(input_shapes=dict(x=[1, 3, 48, 192]))])\n",
    );
    let plain = Config::from_file(&p).unwrap();
    assert_eq!(
        plain.onnx_config().unwrap().static_shapes,
        vec![("x".to_string(), vec![1, 3, 48, 192])]
    );
    // It is the one shape compiled for: the IR is fixed to it.
    assert_eq!(
        c.onnx_config().unwrap().static_shapes,
        vec![("input".to_string(), vec![1, 3, 224, 224])]
    );
}

#[test]
fn wrong_types_point_at_the_assignment_that_set_them() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "base.py",
        "# base\nonnx_config = dict(opset_version=11)\n",
    );
    let p = write(
        d.path(),
        "child.py",
        "_base_ = './base.py'\n\nx = 1\nonnx_config = dict(\n    input_shape='big')\n",
    );
    let e = Config::from_file(&p)
        .unwrap()
        .onnx_config()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("child.py:4") && e.contains("onnx_config.input_shape"),
        "{e}"
    );
    let p = write(d.path(), "only_base.py", "_base_ = './bad_base.py'\n");
    write(
        d.path(),
        "bad_base.py",
        "\n\nbackend_config = dict(type=3)\n",
    );
    let e = Config::from_file(&p)
        .unwrap()
        .backend_type()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad_base.py:3") && e.contains("backend_config.type"),
        "{e}"
    );
}

#[test]
fn custom_ops_resolve_against_the_config_file() {
    let d = tempfile::tempdir().unwrap();
    write(
        d.path(),
        "_base_/ort.py",
        "backend_config = dict(type='onnxruntime', custom_ops=['libs/libmyops.so', '/opt/abs.so'])\n",
    );
    let p = write(d.path(), "sub/cfg.py", "_base_ = ['../_base_/ort.py']\n");
    let dir = std::path::absolute(d.path()).unwrap();
    // Against the folder of the file given, also for a key written in a base.
    assert_eq!(
        Config::from_file(&p).unwrap().custom_ops().unwrap(),
        vec![
            dir.join("sub/libs/libmyops.so"),
            PathBuf::from("/opt/abs.so")
        ]
    );
    let p = write(
        d.path(),
        "one.py",
        "backend_config = dict(custom_ops='x.so')\n",
    );
    assert_eq!(
        Config::from_file(&p).unwrap().custom_ops().unwrap(),
        vec![dir.join("x.so")]
    );
    let p = write(
        d.path(),
        "none.py",
        "backend_config = dict(type='onnxruntime')\n",
    );
    assert!(
        Config::from_file(&p)
            .unwrap()
            .custom_ops()
            .unwrap()
            .is_empty()
    );
    // A config with no file: the current directory.
    let c = Config::from_json(
        &json!({"backend_config": {"custom_ops": ["rel.so"]}}),
        Path::new("<dict>"),
    )
    .unwrap();
    assert_eq!(
        c.custom_ops().unwrap(),
        vec![std::env::current_dir().unwrap().join("rel.so")]
    );
}

#[test]
fn the_same_custom_op_library_twice_is_loaded_once() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "libs/libmy.so", "not really a library");
    let p = write(
        d.path(),
        "cfg.py",
        "backend_config = dict(custom_ops=['libs/libmy.so', 'libs/../libs/libmy.so', 'libs/libmy.so'])\n",
    );
    assert_eq!(
        Config::from_file(&p).unwrap().custom_ops().unwrap().len(),
        1
    );
}

#[test]
fn custom_ops_of_the_wrong_type_name_the_key() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "a.py", "backend_config = dict(custom_ops=3)\n");
    let e = Config::from_file(&p)
        .unwrap()
        .custom_ops()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a.py:1")
            && e.contains("backend_config.custom_ops")
            && e.contains("list of library paths"),
        "{e}"
    );
    let p = write(
        d.path(),
        "b.py",
        "backend_config = dict(custom_ops=['ok.so', ''])\n",
    );
    let e = Config::from_file(&p)
        .unwrap()
        .custom_ops()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("backend_config.custom_ops[1]") && e.contains("non-empty path"),
        "{e}"
    );
}
