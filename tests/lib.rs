//! Workspace-level tests live in `tests/tests/`; this library only gives them a package to run in.
