"""Tabletop exercises: simulated hosts, the scenario's injects on the exercise clock, and the
after-action review. The same runbook and engine as a live incident; only the hosts are played."""
