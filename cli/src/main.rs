//! Skeleton placeholder: replaced by the real entry point.
fn main() {}
