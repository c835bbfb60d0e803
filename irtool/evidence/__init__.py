"""The evidence store: every output kept as `evidence/<sha256>`, written as it streams in."""
