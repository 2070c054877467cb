//! Shared helpers of the criterion benchmarks (inputs come from `ho_linalg::testing`).
