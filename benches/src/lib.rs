//! hakmem-bench: the benchmark workloads.
