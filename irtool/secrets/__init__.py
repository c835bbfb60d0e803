"""Secrets: kept only in the OS keyring, handed to transports, and redacted from all we write."""
