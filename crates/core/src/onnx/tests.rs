use super::proto::*;
use super::*;

fn vi(name: &str, elem: i32, dims: &[Option<i64>]) -> ValueInfoProto {
    use tensor_shape_proto::{Dimension, dimension::Value as DV};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(n) => DV::DimValue(*n),
                None => DV::DimParam("batch".into()),
            }),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        ..Default::default()
    }
}

/// y = x + w, with w an initializer that is also listed as a graph input (old exporters).
fn add_model() -> ModelProto {
    let w = tensor_to_proto(
        "w",
        &Tensor::from_shape_vec(&[3], vec![1f32, 2., 3.]).unwrap(),
    );
    ModelProto {
        ir_version: Some(8),
        producer_name: Some("test".into()),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(13),
        }],
        graph: Some(GraphProto {
            name: Some("g".into()),
            node: vec![NodeProto {
                op_type: Some("Add".into()),
                input: vec!["x".into(), "w".into()],
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![vi("x", 1, &[None, Some(3)]), vi("w", 1, &[Some(3)])],
            output: vec![vi("y", 1, &[None, Some(3)])],
            initializer: vec![w],
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[test]
fn inspect_skips_initializer_inputs_and_keeps_symbols() {
    let info = inspect(&add_model()).unwrap();
    assert_eq!(info.inputs.len(), 1);
    assert_eq!(info.inputs[0].name, "x");
    assert_eq!(info.inputs[0].shape_string(), "[batch, 3]");
    assert_eq!(info.outputs[0].dtype, DType::F32);
    assert_eq!(info.opset(), Some(13));
    assert_eq!(
        (info.node_count, info.producer.as_str(), info.ir_version),
        (1, "test", 8)
    );
}

#[test]
fn load_errors_are_specific() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(&dir.path().join("nope.onnx")).unwrap_err().to_string();
    assert!(e.contains("nope.onnx") && e.contains("not found"), "{e}");
    let p = dir.path().join("empty.onnx");
    std::fs::write(&p, b"").unwrap();
    assert!(load(&p).unwrap_err().to_string().contains("empty"));
    let p = dir.path().join("text.onnx");
    std::fs::write(&p, b"# this is a python file\nx = 1\n").unwrap();
    let e = load(&p).unwrap_err().to_string();
    assert!(
        e.contains("text.onnx") && e.contains("not an ONNX model"),
        "{e}"
    );
    let bytes = add_model().encode_to_vec();
    let p = dir.path().join("trunc.onnx");
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("trunc.onnx") && e.contains("truncated"), "{e}");
}

#[test]
fn external_data_is_loaded_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = add_model();
    let g = m.graph.as_mut().unwrap();
    let w = &mut g.initializer[0];
    let data = w.raw_data.take().unwrap();
    let mut file = vec![0u8; 5];
    file.extend_from_slice(&data);
    std::fs::write(dir.path().join("weights.bin"), &file).unwrap();
    w.data_location = Some(DataLocation::External as i32);
    let kv = |k: &str, v: &str| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v.into()),
    };
    w.external_data = vec![
        kv("location", "weights.bin"),
        kv("offset", "5"),
        kv("length", "12"),
    ];
    let p = dir.path().join("ext.onnx");
    save(&m, &p).unwrap();
    let loaded = load(&p).unwrap();
    let t = tensor_from_proto(&loaded.graph.unwrap().initializer[0]).unwrap();
    assert_eq!(t.as_slice::<f32>().unwrap(), &[1., 2., 3.]);

    std::fs::remove_file(dir.path().join("weights.bin")).unwrap();
    let e = load(&p).unwrap_err().to_string();
    assert!(e.contains("'w'") && e.contains("weights.bin"), "{e}");

    let g = m.graph.as_mut().unwrap();
    g.initializer[0].external_data[0] = kv("location", "../escape.bin");
    save(&m, &p).unwrap();
    assert!(load(&p).unwrap_err().to_string().contains("relative path"));
}

#[test]
fn tensor_protos_round_trip_and_typed_fields_decode() {
    for d in DType::ALL {
        let t = Tensor::zeros(d, &[2, 2]);
        let bytes = tensor_to_proto("a", &t).encode_to_vec();
        assert_eq!(tensor_from_pb_bytes(&bytes).unwrap(), (Some("a".into()), t));
    }
    let p = TensorProto {
        dims: vec![2],
        data_type: Some(7),
        int64_data: vec![5, -6],
        ..Default::default()
    };
    assert_eq!(
        tensor_from_proto(&p).unwrap().as_slice::<i64>().unwrap(),
        &[5, -6]
    );
    let p = TensorProto {
        dims: vec![3],
        data_type: Some(1),
        float_data: vec![1.0],
        ..Default::default()
    };
    assert!(tensor_from_proto(&p).is_err());
    let p = TensorProto {
        dims: vec![1],
        data_type: Some(8),
        ..Default::default()
    };
    assert!(tensor_from_proto(&p).unwrap_err().contains("string"));
    // onnx.helper.make_tensor("x", TensorProto.INT2, [5], [-2, -1, 0, 1, 1]).int32_data and
    // the same for UINT2 [0, 1, 2, 3, 3, 2]: four values per entry, lowest bits first.
    let p = TensorProto {
        dims: vec![5],
        data_type: Some(26),
        int32_data: vec![78, 1],
        ..Default::default()
    };
    assert_eq!(
        tensor_from_proto(&p).unwrap().to_f64_vec(),
        [-2.0, -1.0, 0.0, 1.0, 1.0]
    );
    let p = TensorProto {
        dims: vec![6],
        data_type: Some(25),
        int32_data: vec![228, 11],
        ..Default::default()
    };
    assert_eq!(
        tensor_from_proto(&p).unwrap().to_f64_vec(),
        [0.0, 1.0, 2.0, 3.0, 3.0, 2.0]
    );
    let p = TensorProto {
        int32_data: vec![228],
        ..p
    };
    let e = tensor_from_proto(&p).unwrap_err();
    assert!(e.contains("2-bit") && e.contains("four per entry"), "{e}");
}

#[test]
fn anonymous_dim_params_are_each_their_own_unknown() {
    // Paddle2ONNX writes dim_param "?" for every unknown dim (a classifier [-1, 3, ?, ?]).
    use tensor_shape_proto::{Dimension, dimension::Value as DV};
    let mut m = add_model();
    let g = m.graph.as_mut().unwrap();
    if let Some(type_proto::Value::TensorType(tt)) =
        g.input[0].r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        tt.shape = Some(TensorShapeProto {
            dim: ["?", "?", "-1"]
                .iter()
                .map(|p| Dimension {
                    value: Some(DV::DimParam(p.to_string())),
                    denotation: None,
                })
                .collect(),
        });
    }
    let info = inspect(&m).unwrap();
    assert_eq!(info.inputs[0].shape_string(), "[?, ?, ?]");
    let x = Tensor::zeros(DType::F32, &[1, 48, 192]);
    crate::validate_inputs(&info.inputs, vec![("x".into(), x)]).unwrap();
    assert!(is_anonymous_dim_param("?") && !is_anonymous_dim_param("batch"));
}
