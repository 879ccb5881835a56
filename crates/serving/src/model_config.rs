//! Triton's model configuration (`config.pbtxt`), read and written with Triton's own
//! `model_config.proto` so that every file Triton accepts reads the same here, and
//! [`ModelSettings`]: the part a server acts on, checked.
//!
//! Source of the rules: Triton's model configuration guide
//! (`docs/user_guide/model_configuration.md` in github.com/triton-inference-server/server):
//! with `max_batch_size > 0` the `dims` leave out the batch dim, which is variable and at most
//! `max_batch_size`; `-1` is a variable-size dim; the default version policy is
//! `latest { num_versions: 1 }`.

use crate::{datatype, proto};
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, text_format::FormatOptions,
};
use rdeploy::core::{DType, Dim, Error, Result, TensorInfo};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

/// The file name Triton reads in each model folder.
pub const CONFIG_FILE: &str = "config.pbtxt";

fn descriptor() -> Result<MessageDescriptor> {
    static POOL: OnceLock<std::result::Result<DescriptorPool, String>> = OnceLock::new();
    let pool = POOL
        .get_or_init(|| {
            DescriptorPool::decode(proto::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            Error::Tensor(format!(
                "rdeploy's built-in model_config.proto is unreadable: {e}"
            ))
        })?;
    pool.get_message_by_name("inference.ModelConfig")
        .ok_or_else(|| {
            Error::Tensor(
                "rdeploy's built-in model_config.proto has no inference.ModelConfig".into(),
            )
        })
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Protobuf's C++ text parser (Triton's) takes a list of messages without a colon
/// (`input [ { ... } ]`, the form Triton's documentation uses); prost-reflect wants
/// `input: [ ... ]`. Inserts the colon after a field name followed by `[`, outside strings and
/// comments, and returns where (offsets in `text`) for mapping error positions back.
fn colon_before_lists(text: &str) -> (String, Vec<usize>) {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut inserted = Vec::new();
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'[' => {
                // The identifier before `[`, and what precedes it.
                let mut end = i;
                while end > 0 && b[end - 1].is_ascii_whitespace() {
                    end -= 1;
                }
                let mut start = end;
                while start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
                    start -= 1;
                }
                let mut before = start;
                while before > 0 && b[before - 1].is_ascii_whitespace() {
                    before -= 1;
                }
                let is_name = start < end && !b[start].is_ascii_digit();
                let is_value = before > 0 && b[before - 1] == b':';
                if is_name && !is_value {
                    out.push_str(&text[last..end]);
                    out.push(':');
                    inserted.push(end);
                    last = end;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[last.min(text.len())..]);
    (out, inserted)
}

/// Parses a `config.pbtxt` (protobuf text format of `inference.ModelConfig`).
///
/// # Errors
/// [`Error::Config`] naming `file`, the line and column, and what the parser expected (an
/// unknown field, a wrong enum value like `TYPE_FLOAT`, a syntax error).
pub fn parse_pbtxt(text: &str, file: &Path) -> Result<proto::ModelConfig> {
    let desc = descriptor()?;
    let (normal, inserted) = colon_before_lists(text);
    let msg = DynamicMessage::parse_text_format(desc, &normal).map_err(|e| {
        let at = miette::Diagnostic::labels(&e)
            .and_then(|mut l| l.next())
            .map(|l| {
                let shift = inserted.iter().filter(|&&at| at < l.offset()).count();
                line_col(text, l.offset().saturating_sub(shift))
            });
        Error::Config {
            file: Some(file.to_path_buf()),
            line: at.map(|a| a.0),
            col: at.map(|a| a.1),
            key: None,
            msg: format!("not a Triton model config (model_config.proto text format): {e}"),
        }
    })?;
    msg.transcode_to::<proto::ModelConfig>()
        .map_err(|e| Error::Config {
            file: Some(file.to_path_buf()),
            line: None,
            col: None,
            key: None,
            msg: format!("cannot read as inference.ModelConfig: {e}"),
        })
}

/// Reads and parses `<model_dir>/config.pbtxt`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, and [`parse_pbtxt`]'s errors.
pub fn read(model_dir: &Path) -> Result<proto::ModelConfig> {
    let path = model_dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
    parse_pbtxt(&text, &path)
}

/// Prints `cfg` as Triton's `config.pbtxt` text (fields at their default left out).
///
/// # Errors
/// Only when the built-in descriptor is unusable (a build defect).
pub fn to_pbtxt(cfg: &proto::ModelConfig) -> Result<String> {
    let mut msg = DynamicMessage::new(descriptor()?);
    msg.transcode_from(cfg)
        .map_err(|e| Error::Tensor(format!("model config does not encode: {e}")))?;
    let text = msg.to_text_format_with_options(&FormatOptions::new().pretty(true));
    Ok(format!("{}\n", text.trim_end()))
}

/// `cfg` as JSON the way Triton's model-configuration endpoint returns it (proto field names,
/// 64-bit integers as numbers, as Triton 2.51 answers, defaults left out).
///
/// # Errors
/// Only when the built-in descriptor is unusable (a build defect).
pub fn to_json(cfg: &proto::ModelConfig) -> Result<serde_json::Value> {
    let mut msg = DynamicMessage::new(descriptor()?);
    msg.transcode_from(cfg)
        .map_err(|e| Error::Tensor(format!("model config does not encode: {e}")))?;
    let opts = prost_reflect::SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(false);
    msg.serialize_with_options(serde_json::value::Serializer, &opts)
        .map_err(|e| Error::Tensor(format!("model config does not encode as JSON: {e}")))
}

/// Most instances of one model a server starts: each loads its own engine, so a typo of
/// 100000 would take the machine's memory.
pub const MAX_INSTANCES: usize = 64;

/// One input or output as a server checks it.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorSpec {
    /// The tensor's name.
    pub name: String,
    /// Its element type.
    pub dtype: DType,
    /// Its dims without the batch dim when the model batches; `-1` is variable.
    pub dims: Vec<i64>,
}

impl TensorSpec {
    /// The full shape a request must have: `[-1] + dims` when `batched`.
    pub fn full_shape(&self, batched: bool) -> Vec<i64> {
        let mut s = Vec::with_capacity(self.dims.len() + 1);
        if batched {
            s.push(-1);
        }
        s.extend_from_slice(&self.dims);
        s
    }
}

/// Dynamic batching as configured (`dynamic_batching { ... }`).
#[derive(Clone, Debug, PartialEq)]
pub struct DynamicBatching {
    /// How long a request may wait for others to join its batch
    /// (`max_queue_delay_microseconds`, Triton's default 0).
    pub max_queue_delay: Duration,
    /// Batch sizes to prefer (`preferred_batch_size`); empty means as large as possible.
    pub preferred_batch_sizes: Vec<usize>,
    /// Requests that may wait at once (`default_queue_policy.max_queue_size`; 0 = no limit in
    /// Triton; servers apply their own bound then).
    pub max_queue_size: usize,
}

/// The serving settings of one model, from its config.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSettings {
    /// The model's name.
    pub name: String,
    /// Largest batch an engine call takes; 0 = the model does not batch (requests run alone).
    pub max_batch_size: usize,
    /// Inputs, in config order.
    pub inputs: Vec<TensorSpec>,
    /// Outputs, in config order.
    pub outputs: Vec<TensorSpec>,
    /// Dynamic batching, when on.
    pub dynamic_batching: Option<DynamicBatching>,
    /// Model instances (engine wrappers) to run at once: the sum of `instance_group` counts
    /// (1 when none is given, as in Triton).
    pub instances: usize,
}

impl ModelSettings {
    /// Checks a parsed config and keeps what a server needs.
    ///
    /// # Errors
    /// [`Error::Config`] naming `file` and the key for a negative `max_batch_size`, a tensor of a
    /// type rdeploy cannot carry (`TYPE_STRING`, `TYPE_BF16`), a `sequence_batching` or
    /// `ensemble_scheduling` scheduler, or a GPU instance group.
    pub fn from_config(cfg: &proto::ModelConfig, file: &Path) -> Result<ModelSettings> {
        let err = |key: &str, msg: String| Error::Config {
            file: Some(file.to_path_buf()),
            line: None,
            col: None,
            key: Some(key.to_string()),
            msg,
        };
        let max_batch_size = usize::try_from(cfg.max_batch_size).map_err(|_| {
            err(
                "max_batch_size",
                format!("must be >= 0, got {}", cfg.max_batch_size),
            )
        })?;
        let spec = |kind: &str, name: &str, data_type: i32, dims: &[i64]| {
            let ty = proto::DataType::try_from(data_type)
                .map(|t| t.as_str_name())
                .unwrap_or("an unknown type");
            let dtype = datatype::from_triton_type(ty).ok_or_else(|| {
                err(
                    &format!("{kind}.{name}.data_type"),
                    format!("{ty} is not supported by rdeploy (numeric and BOOL tensors only)"),
                )
            })?;
            if let Some(d) = dims.iter().find(|&&d| d < -1) {
                return Err(err(
                    &format!("{kind}.{name}.dims"),
                    format!("dim {d} is neither a size nor -1"),
                ));
            }
            Ok(TensorSpec {
                name: name.to_string(),
                dtype,
                dims: dims.to_vec(),
            })
        };
        let inputs = cfg
            .input
            .iter()
            .map(|t| spec("input", &t.name, t.data_type, &t.dims))
            .collect::<Result<Vec<_>>>()?;
        let outputs = cfg
            .output
            .iter()
            .map(|t| spec("output", &t.name, t.data_type, &t.dims))
            .collect::<Result<Vec<_>>>()?;
        use proto::model_config::SchedulingChoice;
        let dynamic_batching = match &cfg.scheduling_choice {
            None => None,
            Some(SchedulingChoice::DynamicBatching(d)) => Some(DynamicBatching {
                max_queue_delay: Duration::from_micros(d.max_queue_delay_microseconds),
                preferred_batch_sizes: d
                    .preferred_batch_size
                    .iter()
                    .map(|&n| usize::try_from(n).unwrap_or(0))
                    .filter(|&n| n > 0)
                    .collect(),
                max_queue_size: d
                    .default_queue_policy
                    .as_ref()
                    .map_or(0, |q| q.max_queue_size as usize),
            }),
            Some(SchedulingChoice::SequenceBatching(_)) => {
                return Err(err(
                    "sequence_batching",
                    "stateful (sequence) models are not served by rdeploy; use dynamic_batching or none".into(),
                ));
            }
            Some(SchedulingChoice::EnsembleScheduling(_)) => {
                return Err(err(
                    "ensemble_scheduling",
                    "ensembles are not served by rdeploy; serve each model and chain them in the client".into(),
                ));
            }
        };
        if dynamic_batching.is_some() && max_batch_size == 0 {
            return Err(err(
                "dynamic_batching",
                "needs max_batch_size > 0 (the batcher joins requests along the batch dim up to it)".into(),
            ));
        }
        let mut instances = 0;
        for g in &cfg.instance_group {
            if g.count < 0 || g.count > MAX_INSTANCES as i32 {
                return Err(err(
                    "instance_group.count",
                    format!(
                        "{} is not between 1 and {MAX_INSTANCES} (0 or absent means 1)",
                        g.count
                    ),
                ));
            }
            let kind = proto::model_instance_group::Kind::try_from(g.kind)
                .unwrap_or(proto::model_instance_group::Kind::Auto);
            if kind == proto::model_instance_group::Kind::Gpu {
                return Err(err(
                    "instance_group.kind",
                    "KIND_GPU: rdeploy's servers run on the CPU here; use KIND_CPU".into(),
                ));
            }
            instances += usize::try_from(g.count.max(1)).unwrap_or(1);
        }
        Ok(ModelSettings {
            name: cfg.name.clone(),
            max_batch_size,
            inputs,
            outputs,
            dynamic_batching,
            instances: instances.max(1),
        })
    }
}

impl ModelSettings {
    /// Checks the config against the deployed model's signature, as Triton checks a config
    /// against a model: every model input is configured; every configured tensor exists with
    /// the same type; ranks agree (the batch dim added when batching) and fixed dims match; when
    /// batching, every input's first dim is variable and every output's first dim is the
    /// inputs' batch dim (same symbol), else outputs could not be split back per request.
    ///
    /// # Errors
    /// A message naming the tensor and both shapes or types.
    pub fn check_signature(
        &self,
        inputs: &[TensorInfo],
        outputs: &[TensorInfo],
    ) -> std::result::Result<(), String> {
        let batching = self.max_batch_size > 0;
        for i in inputs {
            if !self.inputs.iter().any(|c| c.name == i.name) {
                return Err(format!(
                    "the deployed model's input '{}' is missing from config.pbtxt",
                    i.name
                ));
            }
        }
        let mut batch_symbol: Option<&str> = None;
        for (kind, configured, model) in [
            ("input", &self.inputs, inputs),
            ("output", &self.outputs, outputs),
        ] {
            for c in configured {
                let Some(info) = model.iter().find(|t| t.name == c.name) else {
                    return Err(format!(
                        "config.pbtxt {kind} '{}' is not an {kind} of the deployed model (it has {})",
                        c.name,
                        model
                            .iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                };
                if c.dtype != info.dtype {
                    return Err(format!(
                        "config.pbtxt {kind} '{}' is {} but the deployed model's is {}",
                        c.name,
                        datatype::triton_type(c.dtype),
                        datatype::triton_type(info.dtype)
                    ));
                }
                let Some(dims) = &info.shape else { continue };
                let mismatch = || {
                    format!(
                        "config.pbtxt {kind} '{}' has dims {:?}{} but the deployed model's shape is {}",
                        c.name,
                        c.dims,
                        if batching {
                            " after the batch dim (max_batch_size > 0)"
                        } else {
                            ""
                        },
                        info.shape_string()
                    )
                };
                if dims.len() != c.dims.len() + usize::from(batching) {
                    return Err(mismatch());
                }
                let model_dims = if batching { &dims[1..] } else { &dims[..] };
                for (&cd, md) in c.dims.iter().zip(model_dims) {
                    if let (Some(f), true) = (md.fixed(), cd >= 0)
                        && f != cd as u64
                    {
                        return Err(mismatch());
                    }
                }
                if !batching {
                    continue;
                }
                let first = match dims.first() {
                    Some(Dim::Symbolic(s)) => s.as_str(),
                    Some(Dim::Fixed(n)) => {
                        return Err(format!(
                            "the deployed model's {kind} '{}' has a fixed first dim of {n}, but max_batch_size > 0 joins requests along it; deploy with a dynamic batch dim (onnx_config dynamic_axes) or set max_batch_size: 0",
                            c.name
                        ));
                    }
                    None => return Err(mismatch()),
                };
                match (kind, batch_symbol) {
                    ("input", None) => batch_symbol = Some(first),
                    (_, Some(b)) if b == first || b.is_empty() || first.is_empty() => {}
                    (_, b) => {
                        return Err(format!(
                            "{kind} '{}' has first dim '{first}', not the inputs' batch dim '{}', so requests joined along the batch dim could not be split back; set max_batch_size: 0",
                            c.name,
                            b.unwrap_or_default()
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
name: "resnet"
backend: "rdeploy"
max_batch_size: 8
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 3, 224, 224 ]
  }
]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 1000 ] } ]
dynamic_batching { max_queue_delay_microseconds: 500 preferred_batch_size: [ 4, 8 ] }
instance_group [ { count: 2 kind: KIND_CPU } ]
"#;

    #[test]
    fn reads_tritons_own_syntax_and_round_trips() -> Result<()> {
        let cfg = parse_pbtxt(EXAMPLE, Path::new("config.pbtxt"))?;
        let s = ModelSettings::from_config(&cfg, Path::new("config.pbtxt"))?;
        assert_eq!(s.max_batch_size, 8);
        assert_eq!(s.inputs[0].dims, [3, 224, 224]);
        assert_eq!(s.inputs[0].full_shape(true), [-1, 3, 224, 224]);
        assert_eq!(s.outputs[0].dtype, DType::F32);
        assert_eq!(s.instances, 2);
        let d = s.dynamic_batching.as_ref().expect("dynamic batching");
        assert_eq!(d.max_queue_delay, Duration::from_micros(500));
        assert_eq!(d.preferred_batch_sizes, [4, 8]);
        let again = parse_pbtxt(&to_pbtxt(&cfg)?, Path::new("x"))?;
        assert_eq!(again, cfg);
        Ok(())
    }

    #[test]
    fn lists_with_and_without_colon_strings_and_comments() -> Result<()> {
        let text = "name: \"a [b\" # input [ not a field\ninput: [ { name: \"x\" dims: [1] } ]\noutput [{ name: \"y\" dims [ 2 ] }]";
        let cfg = parse_pbtxt(text, Path::new("c"))?;
        assert_eq!(cfg.name, "a [b");
        assert_eq!(
            (cfg.input[0].dims.as_slice(), cfg.output[0].dims.as_slice()),
            (&[1][..], &[2][..])
        );
        Ok(())
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let bad = "name: \"m\"\ninput [ { name: \"x\" data_type: TYPE_FLOAT } ]\n";
        let e = parse_pbtxt(bad, Path::new("repo/m/config.pbtxt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("repo/m/config.pbtxt:2:"), "{e}");
        assert!(e.contains("TYPE_FLOAT"), "{e}");
        let e = parse_pbtxt("nmae: \"m\"", Path::new("c.pbtxt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nmae"), "{e}");
    }

    fn info(name: &str, dims: &[&str]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dtype: DType::F32,
            shape: Some(
                dims.iter()
                    .map(|d| {
                        d.parse::<u64>()
                            .map_or_else(|_| Dim::Symbolic(d.to_string()), Dim::Fixed)
                    })
                    .collect(),
            ),
        }
    }

    fn settings(
        max_batch_size: usize,
        inputs: &[(&str, &[i64])],
        outputs: &[(&str, &[i64])],
    ) -> ModelSettings {
        let spec = |(n, d): &(&str, &[i64])| TensorSpec {
            name: n.to_string(),
            dtype: DType::F32,
            dims: d.to_vec(),
        };
        ModelSettings {
            name: "m".into(),
            max_batch_size,
            inputs: inputs.iter().map(spec).collect(),
            outputs: outputs.iter().map(spec).collect(),
            dynamic_batching: None,
            instances: 1,
        }
    }

    #[test]
    fn configs_that_do_not_fit_the_model_are_named() {
        let ins = [info("x", &["N", "3", "224"])];
        let outs = [info("y", &["N", "10"])];
        assert!(
            settings(8, &[("x", &[3, 224])], &[("y", &[10])])
                .check_signature(&ins, &outs)
                .is_ok()
        );
        assert!(
            settings(0, &[("x", &[-1, 3, 224])], &[("y", &[-1, 10])])
                .check_signature(&ins, &outs)
                .is_ok()
        );
        let cases: [(ModelSettings, &str); 5] = [
            (
                settings(8, &[("x", &[3, 225])], &[("y", &[10])]),
                "has dims [3, 225]",
            ),
            (
                settings(0, &[("x", &[3, 224])], &[("y", &[10])]),
                "has dims [3, 224]",
            ),
            (settings(8, &[], &[("y", &[10])]), "input 'x' is missing"),
            (
                settings(8, &[("x", &[3, 224])], &[("z", &[10])]),
                "'z' is not an output",
            ),
            (
                settings(8, &[("x", &[3, 224])], &[("y", &[11])]),
                "output 'y'",
            ),
        ];
        for (s, want) in cases {
            let e = s.check_signature(&ins, &outs).unwrap_err();
            assert!(e.contains(want), "{e} should contain {want}");
        }
        // An output whose first dim is not the batch dim cannot be split back per request.
        let e = settings(4, &[("x", &[3, 224])], &[("y", &[2])])
            .check_signature(&ins, &[info("y", &["M", "2"])])
            .unwrap_err();
        assert!(e.contains("not the inputs' batch dim 'N'"), "{e}");
        let e = settings(4, &[("x", &[3, 224])], &[("y", &[10])])
            .check_signature(&[info("x", &["1", "3", "224"])], &outs)
            .unwrap_err();
        assert!(e.contains("fixed first dim of 1"), "{e}");
    }

    #[test]
    fn unsupported_settings_are_refused_by_key() -> Result<()> {
        let cfg = parse_pbtxt(
            "name: \"m\" input [ { name: \"t\" data_type: TYPE_INVALID dims: [ 1 ] } ]",
            Path::new("c"),
        )?;
        let e = ModelSettings::from_config(&cfg, Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("input.t.data_type") && e.contains("TYPE_INVALID"),
            "{e}"
        );
        for bad in [
            "instance_group [ { kind: KIND_GPU } ]",
            "instance_group [ { count: 100000 } ]",
            "instance_group [ { count: -3 } ]",
            "dynamic_batching { }",
            "max_batch_size: -1",
        ] {
            let cfg = parse_pbtxt(&format!("name: \"m\" {bad}"), Path::new("c"))?;
            assert!(
                ModelSettings::from_config(&cfg, Path::new("c")).is_err(),
                "{bad}"
            );
        }
        Ok(())
    }
}
