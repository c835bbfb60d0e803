"""The terminal UI: the face a responder steps through an incident with."""
