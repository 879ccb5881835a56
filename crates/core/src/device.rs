//! Device strings, parsed the way MMDeploy parses them (`cpu`, `cuda`, `cuda:1`).

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A device to convert for and run on.
///
/// Parsed from `kind[:index]`; `kind` is lower-cased. MMDeploy's kinds are `cpu` and `cuda`;
/// other kinds (`gpu`, `npu`...) parse too, and each backend says which it supports.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Device {
    kind: String,
    index: Option<u32>,
}

impl Device {
    /// The CPU.
    pub fn cpu() -> Device {
        Device {
            kind: "cpu".into(),
            index: None,
        }
    }

    /// The device kind (`cpu`, `cuda`...).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The index given after `:`, if any.
    pub fn index(&self) -> Option<u32> {
        self.index
    }

    /// MMDeploy's device id: -1 for CPU, else the index (0 when not given).
    pub fn device_id(&self) -> i64 {
        if self.is_cpu() {
            -1
        } else {
            i64::from(self.index.unwrap_or(0))
        }
    }

    /// Whether this is the CPU.
    pub fn is_cpu(&self) -> bool {
        self.kind == "cpu"
    }

    /// Checks that this device's kind is one of `supported`, for a backend's error messages.
    ///
    /// # Errors
    /// [`Error::Device`] naming the backend and the kinds it supports.
    pub fn ensure_supported(&self, backend: &str, supported: &[&str]) -> Result<()> {
        if supported.contains(&self.kind.as_str()) {
            Ok(())
        } else {
            Err(Error::Device {
                device: self.to_string(),
                msg: format!(
                    "backend '{backend}' runs only on {}; pass --device {} (rdeploy never falls \
                     back to another device silently)",
                    supported.join(", "),
                    supported.first().copied().unwrap_or("cpu"),
                ),
            })
        }
    }
}

impl Default for Device {
    fn default() -> Self {
        Device::cpu()
    }
}

impl FromStr for Device {
    type Err = Error;

    fn from_str(s: &str) -> Result<Device> {
        let bad = |msg: &str| Error::Device {
            device: s.to_string(),
            msg: msg.to_string(),
        };
        let t = s.trim();
        let (kind, index) = match t.split_once(':') {
            Some((k, i)) => {
                let idx = i.parse::<u32>().map_err(|_| {
                    bad("the part after ':' must be a device index such as 0 or 1 (e.g. cuda:1)")
                })?;
                (k, Some(idx))
            }
            None => (t, None),
        };
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad("expected a device such as cpu, cuda or cuda:1"));
        }
        let kind = kind.to_ascii_lowercase();
        if kind == "cpu" && index.is_some_and(|i| i != 0) {
            return Err(bad("there is one CPU device; use cpu"));
        }
        Ok(Device { kind, index })
    }
}

impl TryFrom<String> for Device {
    type Error = Error;
    fn try_from(s: String) -> Result<Device> {
        s.parse()
    }
}

impl From<Device> for String {
    fn from(d: Device) -> String {
        d.to_string()
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}:{i}", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mmdeploy_devices() {
        let d: Device = "cpu".parse().unwrap();
        assert!(d.is_cpu());
        assert_eq!(d.device_id(), -1);
        let d: Device = "cuda".parse().unwrap();
        assert_eq!((d.kind(), d.index(), d.device_id()), ("cuda", None, 0));
        let d: Device = "CUDA:1".parse().unwrap();
        assert_eq!((d.kind(), d.index(), d.device_id()), ("cuda", Some(1), 1));
        assert_eq!(d.to_string(), "cuda:1");
    }

    #[test]
    fn rejects_malformed_devices() {
        for bad in ["", "cuda:", "cuda:x", "cuda:-1", "cu da", "cpu:3", ":0"] {
            let e = bad.parse::<Device>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("device '{bad}'")), "{bad}: {e}");
        }
    }

    #[test]
    fn unsupported_device_names_backend_and_choices() {
        let d: Device = "cuda:0".parse().unwrap();
        let e = d
            .ensure_supported("tract", &["cpu"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("tract") && e.contains("cpu") && e.contains("cuda:0"),
            "{e}"
        );
        assert!(Device::cpu().ensure_supported("tract", &["cpu"]).is_ok());
    }
}
