"""The incident engine: commands checked against state folded from the journal."""
