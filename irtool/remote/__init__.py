"""Reaching hosts: one small protocol (`base`), one module per transport, and the fan-out."""
