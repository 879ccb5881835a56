//! Triton-layout model repositories.
