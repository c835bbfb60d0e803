"""Findings: what irtool reads in the evidence it collected (web logs first), in a derived
analytical store that can be rebuilt from the evidence at any time."""
