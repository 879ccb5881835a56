//! rdeploy's backend plugin ABI: a backend in a shared library, loaded by the stock `rdeploy`
//! binary without rebuilding it (like Triton's `TRITONBACKEND_*` backends).
//!
//! The ABI is C, described by [`include/rdeploy_plugin.h`](../include/rdeploy_plugin.h) and
//! mirrored in [`abi`]. This crate has both sides:
//!
//! - [`host`]: loading plugins (`RDEPLOY_PLUGIN_PATH`, `--plugin FILE`) into a
//!   [`Registry`](rdeploy_core::Registry). A plugin built for another ABI version, missing a
//!   function, or failing to load is refused with the reason and listed as unavailable; other
//!   backends keep working.
//! - [`export_plugin!`]: turns any Rust [`BackendManager`](rdeploy_core::BackendManager) into
//!   such a plugin (`crate-type = ["cdylib"]`), with panics caught at the boundary and turned
//!   into errors.
//!
//! ```ignore
//! // In a cdylib crate:
//! rdeploy_plugin::export_plugin!(my_backend::BACKEND);
//! ```

#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi;
pub mod export;
pub mod host;

/// The ABI version this crate speaks (`RDEPLOY_PLUGIN_ABI_VERSION` in the header).
pub const ABI_VERSION: u32 = 1;

/// The C header, for tools that want to install it next to the binary.
pub const HEADER: &str = include_str!("../include/rdeploy_plugin.h");

#[cfg(test)]
mod tests {
    #[test]
    fn header_and_crate_agree_on_the_version() {
        let line = format!("#define RDEPLOY_PLUGIN_ABI_VERSION {}u", super::ABI_VERSION);
        assert!(super::HEADER.contains(&line), "header lacks `{line}`");
    }
}
