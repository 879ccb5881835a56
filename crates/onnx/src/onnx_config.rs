//! The `onnx_config` pass: applies a deploy config's `onnx_config` to an ONNX model, as if
//! MMDeploy had exported the model with it.

use crate::edit::{rename_value, set_dims};
use crate::{Pass, PassContext, PassOutcome};
use rdeploy_config::{InputShape, OnnxConfig};
use rdeploy_core::onnx::{self, ModelInfo, proto::ModelProto};
use rdeploy_core::{Dim, Error, Result};
use std::path::Path;

/// Applies `onnx_config` (MMDeploy's export settings) to an ONNX file: `input_names` and
/// `output_names` rename graph inputs/outputs in order, `input_shape` (`[w, h]` or full shapes)
/// and static `model_inputs` fix dims, `dynamic_axes` makes the named dims symbolic.
///
/// Errors name the `onnx_config` key that does not fit the model, with no file position (the
/// caller, who knows where the key was set, adds it).
#[derive(Clone, Debug)]
pub struct OnnxConfigPass {
    /// The typed `onnx_config` (with static shapes from `backend_config.model_inputs`).
    pub config: OnnxConfig,
}

impl Pass for OnnxConfigPass {
    fn name(&self) -> &str {
        "onnx_config"
    }

    fn run(&self, model: &mut ModelProto, cx: &PassContext<'_>) -> Result<PassOutcome> {
        let before = onnx::inspect(model).map_err(|m| Error::model(cx.model_path, m))?;
        let (after, notes) = apply_onnx_config(model, &before, &self.config, cx.model_path)?;
        let changed = after.inputs != before.inputs || after.outputs != before.outputs;
        Ok(PassOutcome {
            changed,
            notes,
            details: Default::default(),
        })
    }
}

fn key_err(key: &str, msg: impl Into<String>) -> Error {
    Error::config_key(key, msg)
}

/// Applies `cfg` to `model` in place and returns the new signature and notes.
///
/// # Errors
/// [`Error::Config`] naming the `onnx_config` key that does not fit the model (too many names,
/// an unknown tensor in `dynamic_axes`, an axis past the rank...).
fn apply_onnx_config(
    model: &mut ModelProto,
    info: &ModelInfo,
    cfg: &OnnxConfig,
    model_path: &Path,
) -> Result<(ModelInfo, Vec<String>)> {
    let mut notes = Vec::new();
    let graph = model.graph.get_or_insert_with(Default::default);

    for (key, names, current) in [
        ("onnx_config.input_names", &cfg.input_names, &info.inputs),
        ("onnx_config.output_names", &cfg.output_names, &info.outputs),
    ] {
        if names.len() > current.len() {
            return Err(key_err(
                key,
                format!(
                    "gives {} names but the model {} has {} ({}); give at most that many",
                    names.len(),
                    model_path.display(),
                    current.len(),
                    current
                        .iter()
                        .map(|t| t.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for n in names {
            if !seen.insert(n) {
                return Err(key_err(key, format!("names '{n}' twice")));
            }
        }
        // Rename through temporary names so that swaps (a->b, b->a) work.
        let pairs: Vec<(&str, &str)> = current
            .iter()
            .map(|t| t.name.as_str())
            .zip(names.iter().map(String::as_str))
            .filter(|(a, b)| a != b)
            .collect();
        for (i, (from, _)) in pairs.iter().enumerate() {
            rename_value(graph, from, &format!("__rdeploy_rename_{i}__"));
        }
        for (i, (from, to)) in pairs.iter().enumerate() {
            rename_value(graph, &format!("__rdeploy_rename_{i}__"), to);
            notes.push(format!("renamed '{from}' to '{to}'"));
        }
    }
    let mut info = onnx::inspect(model).map_err(|m| Error::model(model_path, m))?;
    let graph = model.graph.get_or_insert_with(Default::default);
    let mut changed_inputs = false;

    match &cfg.input_shape {
        None => {}
        Some(InputShape::WidthHeight(w, h)) => {
            let first = info
                .inputs
                .first()
                .ok_or_else(|| key_err("onnx_config.input_shape", "the model has no inputs"))?;
            let mut dims = first.shape.clone().unwrap_or_default();
            if dims.len() < 2 {
                return Err(key_err(
                    "onnx_config.input_shape",
                    format!(
                        "[w, h] needs an input of rank >= 2; '{}' has shape {}",
                        first.name,
                        first.shape_string()
                    ),
                ));
            }
            let n = dims.len();
            dims[n - 2] = Dim::Fixed(*h);
            dims[n - 1] = Dim::Fixed(*w);
            set_dims(graph, &first.name, &dims);
            changed_inputs = true;
        }
        Some(InputShape::Full(shapes)) => {
            if shapes.len() > info.inputs.len() {
                return Err(key_err(
                    "onnx_config.input_shape",
                    format!(
                        "gives {} shapes but the model has {} inputs",
                        shapes.len(),
                        info.inputs.len()
                    ),
                ));
            }
            for (shape, input) in shapes.iter().zip(&info.inputs) {
                if let Some(dims) = &input.shape
                    && dims.len() != shape.len()
                {
                    return Err(key_err(
                        "onnx_config.input_shape",
                        format!(
                            "shape {shape:?} has rank {} but input '{}' has rank {} ({})",
                            shape.len(),
                            input.name,
                            dims.len(),
                            input.shape_string()
                        ),
                    ));
                }
                let dims: Vec<Dim> = shape.iter().map(|&d| Dim::Fixed(d)).collect();
                set_dims(graph, &input.name, &dims);
                changed_inputs = true;
            }
        }
    }
    for (name, shape) in &cfg.static_shapes {
        let key = "backend_config.model_inputs";
        let Some(input) = info.inputs.iter().find(|t| &t.name == name) else {
            let all: Vec<&str> = info.inputs.iter().map(|t| t.name.as_str()).collect();
            return Err(key_err(
                key,
                format!(
                    "gives a static shape for '{name}', which is not an input of the model (inputs: {})",
                    all.join(", ")
                ),
            ));
        };
        if let Some(dims) = &input.shape
            && (dims.len() != shape.len()
                || dims
                    .iter()
                    .zip(shape)
                    .any(|(d, s)| d.fixed().is_some_and(|f| f != *s)))
        {
            return Err(key_err(
                key,
                format!(
                    "static shape {shape:?} for '{name}' does not fit its shape {}",
                    input.shape_string()
                ),
            ));
        }
        let dims: Vec<Dim> = shape.iter().map(|&d| Dim::Fixed(d)).collect();
        set_dims(graph, name, &dims);
        changed_inputs = true;
    }
    if changed_inputs {
        info = onnx::inspect(model).map_err(|m| Error::model(model_path, m))?;
    }
    let graph = model.graph.get_or_insert_with(Default::default);
    for (name, axes) in &cfg.dynamic_axes {
        let key = format!("onnx_config.dynamic_axes.{name}");
        let is_input = info.inputs.iter().any(|t| &t.name == name);
        let Some(t) = info
            .inputs
            .iter()
            .chain(&info.outputs)
            .find(|t| &t.name == name)
        else {
            let all: Vec<&str> = info
                .inputs
                .iter()
                .chain(&info.outputs)
                .map(|t| t.name.as_str())
                .collect();
            return Err(key_err(
                &key,
                format!(
                    "names no input or output of the model (it has {}); check onnx_config.input_names/output_names",
                    all.join(", ")
                ),
            ));
        };
        let mut dims = t.shape.clone().unwrap_or_default();
        for (axis, dim_name) in axes {
            if *axis >= dims.len() {
                return Err(key_err(
                    &key,
                    format!(
                        "axis {axis} is past the rank of '{name}' ({})",
                        t.shape_string()
                    ),
                ));
            }
            dims[*axis] = Dim::Symbolic(dim_name.clone());
        }
        set_dims(graph, name, &dims);
        if is_input {
            changed_inputs = true;
        }
    }
    if changed_inputs {
        info = onnx::inspect(model).map_err(|m| Error::model(model_path, m))?;
        let graph = model.graph.get_or_insert_with(Default::default);
        // Shapes recorded for intermediate values and outputs came from the old input shapes;
        // engines would take them as constraints. Drop them, then infer the outputs' shapes
        // again from the new inputs; dims named in dynamic_axes keep those names.
        graph.value_info.clear();
        for o in &info.outputs {
            let rank = o.shape.as_ref().map_or(0, Vec::len);
            set_dims(graph, &o.name, &vec![Dim::Symbolic(String::new()); rank]);
        }
        let inferred = match crate::shapes::infer_outputs(model) {
            Ok(shapes) => shapes,
            Err(why) => {
                notes.push(format!(
                    "output shapes could not be inferred again after onnx_config ({why}); dims not named in dynamic_axes are left unknown"
                ));
                vec![None; info.outputs.len()]
            }
        };
        let graph = model.graph.get_or_insert_with(Default::default);
        for (o, got) in info.outputs.iter().zip(inferred) {
            let old = o.shape.clone().unwrap_or_default();
            let mut dims = match got {
                Some(d) if d.len() == old.len() => d,
                _ => vec![Dim::Symbolic(String::new()); old.len()],
            };
            if let Some((_, axes)) = cfg.dynamic_axes.iter().find(|(n, _)| *n == o.name) {
                for (axis, name) in axes {
                    if let Some(d) = dims.get_mut(*axis) {
                        *d = Dim::Symbolic(name.clone());
                    }
                }
            }
            set_dims(graph, &o.name, &dims);
        }
    }
    if let (Some(want), Some(have)) = (cfg.opset_version, info.opset())
        && want > have
    {
        let note = format!(
            "the config asks for opset {want} but the model is opset {have}; rdeploy does not upgrade opsets yet, so it deploys opset {have}"
        );
        tracing::warn!("{note}");
        notes.push(note);
    }
    let info = onnx::inspect(model).map_err(|m| Error::model(model_path, m))?;
    Ok((info, notes))
}
