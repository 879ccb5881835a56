//! ONNX model bytes: decoding, inspection, tensors inside, and the IR-stage passes that run on
//! every model (normalize, shape inference) never panic.
#![no_main]
use rdeploy_onnx::Pass;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(mut model) = rdeploy_core::onnx::decode(data) else {
        return;
    };
    let _ = rdeploy_core::onnx::inspect(&model);
    if let Some(g) = model.graph.as_ref() {
        for t in &g.initializer {
            let _ = rdeploy_core::onnx::tensor_from_proto(t);
        }
    }
    let cfg = rdeploy_core::DeployConfig::default();
    let path = std::path::Path::new("fuzz.onnx");
    let cx = rdeploy_onnx::PassContext {
        model_path: path,
        deploy_cfg: &cfg,
    };
    let _ = rdeploy_onnx::NormalizePass.run(&mut model, &cx);
});
