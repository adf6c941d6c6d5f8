"""Pure, batched tensor operations: deterministic given their arguments, no randomness, no state, no host sync."""
