"""The incident's live commands, one module each, reached from the incident screen (the hub):
parameters learned as it unfolds, indicators, scope, ad-hoc collection, the hosts of a run, a
step started early, and closing over what is still open."""
