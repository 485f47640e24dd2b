//! The model card: render the default or a custom Jinja template from the facts, and merge the
//! result into an existing `README.md` without changing a byte a person wrote.
#![deny(missing_docs)]
#![deny(clippy::print_stdout, clippy::print_stderr)]
