//! What is wrong with a configuration file (`window.toml`, init's `services.toml`): the
//! file, the line and the key, and what was expected. The one error type of every file a
//! window reads, so each message reads the same: `window.toml:7: key `window.name`: …`.

use std::path::{Path, PathBuf};

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, has a wrong key or value, or fails validation.
    #[error("{}:{line}: key `{key}`: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// 1-based line of the offending key or value (or table header for a missing key).
        line: usize,
        /// The key at fault (`window.name`, `service[2].after`, or `-` when the syntax is
        /// broken before any key).
        key: String,
        /// What is wrong and what was expected.
        message: String,
    },
}

impl ConfigError {
    /// The error about byte `pos` of the file `file` whose text is `text`.
    pub fn at(
        file: &Path,
        text: &str,
        pos: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_owned(),
            line: line_of(text, pos),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// The 1-based line of byte offset `pos` in `text`.
pub fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
        let e = ConfigError::Invalid {
            file: "x.toml".into(),
            line: 3,
            key: "a.b".into(),
            message: "bad".into(),
        };
        assert_eq!(e.to_string(), "x.toml:3: key `a.b`: bad");
        let e = ConfigError::at(
            Path::new("y.toml"),
            "a = 1\nb = x\n",
            10,
            "b",
            "not a value",
        );
        assert_eq!(e.to_string(), "y.toml:2: key `b`: not a value");
    }
}
