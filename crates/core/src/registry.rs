//! The backend registry: built-in backends and third-party ones register the same way.

use crate::{BackendManager, Error, Result};
use std::sync::Arc;

/// What a backend crate exports so a registry can install it (like sqlx's `DRIVER`).
#[derive(Clone, Copy, Debug)]
pub struct BackendDescriptor {
    /// The backend's name, as in `backend_config.type`.
    pub name: &'static str,
    /// Other names accepted for it.
    pub aliases: &'static [&'static str],
    /// Makes the manager (cheap: probing the engine happens in `check`).
    pub create: fn() -> Arc<dyn BackendManager>,
}

/// Backends by name, in registration order.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

#[derive(Clone)]
struct Entry {
    aliases: Vec<String>,
    manager: Arc<dyn BackendManager>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a backend from its descriptor.
    ///
    /// # Errors
    /// [`Error::Config`] when the name or an alias is taken.
    pub fn install(&mut self, d: &BackendDescriptor) -> Result<()> {
        let aliases = d.aliases.iter().map(|a| a.to_string()).collect();
        self.register_with_aliases((d.create)(), aliases)
    }

    /// Registers a backend manager under its own name.
    ///
    /// # Errors
    /// [`Error::Config`] when the name is taken.
    pub fn register(&mut self, manager: Arc<dyn BackendManager>) -> Result<()> {
        self.register_with_aliases(manager, Vec::new())
    }

    /// Registers a backend manager under its name and extra aliases.
    ///
    /// # Errors
    /// [`Error::Config`] when the name or an alias is taken.
    pub fn register_with_aliases(
        &mut self,
        manager: Arc<dyn BackendManager>,
        aliases: Vec<String>,
    ) -> Result<()> {
        let name = manager.name().to_string();
        for n in std::iter::once(&name).chain(&aliases) {
            if self.find(n).is_some() {
                return Err(Error::Config {
                    file: None,
                    line: None,
                    col: None,
                    key: None,
                    msg: format!("a backend named '{n}' is already registered"),
                });
            }
        }
        self.entries.push(Entry { aliases, manager });
        Ok(())
    }

    fn find(&self, name: &str) -> Option<&Entry> {
        let lower = name.to_ascii_lowercase();
        self.entries.iter().find(|e| {
            e.manager.name().eq_ignore_ascii_case(&lower)
                || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(&lower))
        })
    }

    /// The backend of that name or alias (case-insensitive).
    ///
    /// # Errors
    /// [`Error::UnknownBackend`] listing the registered names.
    pub fn get(&self, name: &str) -> Result<Arc<dyn BackendManager>> {
        self.find(name)
            .map(|e| e.manager.clone())
            .ok_or_else(|| Error::UnknownBackend {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// The registered names, in registration order.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.manager.name().to_string())
            .collect()
    }

    /// The registered backends, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn BackendManager>> {
        self.entries.iter().map(|e| &e.manager)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
