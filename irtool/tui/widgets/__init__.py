"""Widgets of the incident screens, each in its own module."""
