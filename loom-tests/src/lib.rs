//! Loom models of singular-queue's public API live in `tests/`; this crate has no code of its own.
//!
//! The models run only under `RUSTFLAGS="--cfg singular_queue_loom"`: see the book's
//! verification chapter.
