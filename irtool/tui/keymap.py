"""The responder's own keys: `keymap.yaml` maps binding ids to keys (`incident.note: ctrl+n`)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def keymap_path() -> Path:
    """`IRTOOL_KEYMAP`, else keymap.yaml in the platform's config directory for irtool."""
    override = os.environ.get("IRTOOL_KEYMAP")
    return (
        Path(override) if override else Path(platformdirs.user_config_dir("irtool")) / "keymap.yaml"
    )


def load_keymap(path: Path, known: set[str]) -> tuple[dict[str, str], list[str]]:
    """(binding id -> keys, problems); a missing file is no keymap, a broken one is reported."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [f"{path}: {exc.strerror}"]
    import yaml  # only for those who have a keymap

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        return {}, [f"{where}: not YAML: {getattr(exc, 'problem', exc)}"]
    if not isinstance(data, dict):
        return {}, [f"{path}: write one 'binding-id: keys' per line"]
    keymap: dict[str, str] = {}
    problems: list[str] = []
    for binding, keys in data.items():
        if str(binding) not in known:
            problems.append(f"{path}: '{binding}' is not a binding id (see the command palette)")
        elif not isinstance(keys, str) or not keys.strip():
            problems.append(f"{path}: '{binding}' needs keys such as ctrl+n or 'f2,ctrl+n'")
        else:
            keymap[str(binding)] = keys
    return keymap, problems
