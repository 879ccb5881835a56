//! The merged deploy config as the contract passes it to backends.

use serde::Serialize;
use serde_json::Value;

/// A fully merged deploy config (MMDeploy's `deploy_cfg`), as a JSON-like tree.
///
/// The config crate reads `.py`/`.toml`/`.json`/`.yaml` files into this; backends read the keys
/// they act on and ignore the rest.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct DeployConfig(pub Value);

impl DeployConfig {
    /// An empty config (`{}`).
    pub fn empty() -> DeployConfig {
        DeployConfig(Value::Object(Default::default()))
    }

    /// The value at a dotted path (`backend_config.common_config.fp16_mode`).
    pub fn get(&self, path: &str) -> Option<&Value> {
        path.split('.').try_fold(&self.0, |v, k| v.get(k))
    }

    /// The string at a dotted path.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(Value::as_str)
    }

    /// `backend_config.type`.
    pub fn backend_type(&self) -> Option<&str> {
        self.get_str("backend_config.type")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths() {
        let c = DeployConfig(json!({"backend_config": {"type": "tract", "n": {"m": 3}}}));
        assert_eq!(c.backend_type(), Some("tract"));
        assert_eq!(c.get("backend_config.n.m"), Some(&json!(3)));
        assert_eq!(c.get("backend_config.x"), None);
        assert_eq!(DeployConfig::empty().backend_type(), None);
    }
}
