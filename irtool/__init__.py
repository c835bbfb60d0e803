"""irtool: incident-response runbook orchestrator for Microsoft IIS estates."""

__version__ = "0.1.0"
