//! Reading TOML configuration files: one error type for every psonet config, each error naming
//! the file or the key at fault.

use crate::tls::TlsError;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (the message names the key).
    #[error("{path}: {message}")]
    Parse {
        /// The config file.
        path: PathBuf,
        /// The parser's message, with line and key.
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("{key}: {message}")]
    Invalid {
        /// The key at fault.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A TLS file is missing or wrong.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

impl ConfigError {
    /// `key` holds a value that cannot be used, for the reason `message`.
    pub fn invalid(key: impl Into<String>, message: impl ToString) -> Self {
        ConfigError::Invalid {
            key: key.into(),
            message: message.to_string(),
        }
    }
}

/// Reads and parses the TOML file at `path`; returns it with the directory that relative paths
/// in it are relative to.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<(T, PathBuf), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let value = toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok((value, path.parent().unwrap_or(Path::new(".")).to_path_buf()))
}
