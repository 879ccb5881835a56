//! Containing engine panics: a bug or assertion inside an engine becomes an [`Error::Backend`]
//! instead of killing the process, and prints nothing on its own.

use crate::{Error, Result};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static IN_ENGINE: Cell<u32> = const { Cell::new(0) };
}

/// Runs an engine call, turning a panic inside it into [`Error::Backend`] for `backend`.
///
/// # Errors
/// [`Error::Backend`] with the panic's message when `f` panics.
pub fn catch_engine_panic<T>(
    backend: &str,
    what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    IN_ENGINE.with(|c| c.set(c.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_ENGINE.with(|c| c.set(c.get().saturating_sub(1)));
    r.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("unknown cause");
        Err(Error::backend(
            backend,
            format!("{what}: the engine failed internally ({msg}); the inputs may be outside what the model supports (check their shapes)"),
        ))
    })
}

/// Installs a panic hook that stays silent for panics inside [`catch_engine_panic`] (they are
/// reported as errors) and prints other panics as one line asking for a bug report.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if IN_ENGINE.with(|c| c.get()) > 0 {
            return;
        }
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown cause");
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("error: internal error in rdeploy: {msg}{at}; please report this as a bug");
    }));
}

/// Keeps the process's panic hook but silences it for panics inside [`catch_engine_panic`]
/// (they become errors): for hosts that keep their own hook, such as the Python package,
/// where the default hook would print every caught engine panic and its backtrace.
pub fn quiet_engine_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if IN_ENGINE.with(|c| c.get()) > 0 {
            return;
        }
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_backend_errors() {
        let r: Result<()> =
            catch_engine_panic("x", "running", || panic!("chunk size must be non-zero"));
        let e = r.unwrap_err().to_string();
        assert!(
            e.starts_with("x: running") && e.contains("chunk size"),
            "{e}"
        );
        assert_eq!(catch_engine_panic("x", "running", || Ok(3)).unwrap(), 3);
    }
}
