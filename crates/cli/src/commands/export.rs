//! `rdeploy export triton`: a work dir as a Triton model repository entry.

use crate::args::ExportTritonArgs;
use crate::out;
use anyhow::Result;
use rdeploy_serving::{ExportOptions, Platform, export_triton, model_config};
use serde_json::json;

pub(crate) fn triton(a: ExportTritonArgs) -> Result<()> {
    let opts = ExportOptions {
        name: a.name,
        version: a.version,
        max_batch_size: a.max_batch_size,
        instances: a.instances,
        dynamic_batching: a.dynamic_batching,
        max_queue_delay_us: a.max_queue_delay_us,
        platform: if a.platform == "native" {
            Platform::Native
        } else {
            Platform::Rdeploy
        },
        force: a.force,
    };
    let e = export_triton(&a.work_dir, &a.repo, &opts)?;
    let text = model_config::to_pbtxt(&e.config)?;
    if a.json {
        let doc = json!({
            "model_dir": e.model_dir,
            "version_dir": e.version_dir,
            "config_file": e.model_dir.join(model_config::CONFIG_FILE),
            "config": text,
        });
        out(&format!("{}\n", serde_json::to_string_pretty(&doc)?))
    } else {
        out(&format!(
            "wrote {} and {}\n{text}",
            e.model_dir.join(model_config::CONFIG_FILE).display(),
            e.version_dir.display()
        ))
    }
}
