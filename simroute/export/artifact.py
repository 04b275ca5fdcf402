"""The policy artifact: everything production needs to make the simulated decisions.

Schema ``simroute.policy/1`` (JSON, no code, nothing executable)::

    {"schema": "simroute.policy/1", "simroute_version": "...", "source_run": "...",
     "skills": [...],                       # skill names (label vocabulary)
     "policy": {classifier, risk, router, selector, escalation, verifier,   # {name: ..., args}
                "response_cache": {enabled, ...}, "sticky_sessions": bool},     # optional
     "models": [{"model", "tier", "mode", "rates": [8 floats], "standard_rates": [...],
                 "expected_quality": {skill: p}}],
     "router_state": {...} | null,          # learned state (e.g. a calibrated threshold)
     "sha256": "..."}                       # of the canonical JSON of all other keys

This module has no heavy imports: the runtime uses it to verify artifacts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simroute import __version__
from simroute.errors import InputError

SCHEMA = "simroute.policy/1"
POLICY_LAYERS = ("classifier", "risk", "router", "selector", "escalation", "verifier")
_TOP: dict[str, Any] = {
    "schema": str,
    "simroute_version": str,
    "source_run": str,
    "skills": list,
    "policy": dict,
    "models": list,
    "router_state": (dict, type(None)),
    "sha256": str,
}
_MODEL: dict[str, Any] = {
    "model": str,
    "tier": str,
    "mode": str,
    "rates": list,
    "standard_rates": list,
    "expected_quality": dict,
}


def canonical(doc: Mapping[str, Any]) -> bytes:
    """Canonical JSON bytes of ``doc`` without its ``sha256`` (sorted keys, no spaces)."""
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the schema, version and sha256 to an artifact body."""
    doc = {**doc, "schema": SCHEMA, "simroute_version": __version__}
    doc["sha256"] = hashlib.sha256(canonical(doc)).hexdigest()
    return doc


def validate(doc: Any, source: str) -> dict[str, Any]:
    """Check an artifact's shape, schema, version and hash; return it (InputError otherwise)."""
    if not isinstance(doc, dict):
        raise InputError(source, "expected a JSON object (a simroute policy artifact)")
    if doc.get("schema") != SCHEMA:
        raise InputError(
            source,
            f"unsupported artifact schema {doc.get('schema')!r}; this simroute reads {SCHEMA!r}",
            column="schema",
        )
    for key, typ in _TOP.items():
        if key not in doc:
            raise InputError(source, "missing field", column=key)
        if not isinstance(doc[key], typ):
            raise InputError(source, f"wrong type {type(doc[key]).__name__}", column=key)
    major = doc["simroute_version"].split(".")[0]
    if major != __version__.split(".")[0]:
        raise InputError(
            source,
            f"artifact made by simroute {doc['simroute_version']}, this is {__version__}",
            column="simroute_version",
        )
    want = hashlib.sha256(canonical(doc)).hexdigest()
    if doc["sha256"] != want:
        raise InputError(source, "sha256 mismatch: the artifact was modified after export", column="sha256")
    for layer in POLICY_LAYERS:
        spec = doc["policy"].get(layer)
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise InputError(source, "expected {name: ..., args}", column=f"policy.{layer}")
    if not isinstance(doc["policy"].get("sticky_sessions", False), bool):
        raise InputError(source, "expected true or false", column="policy.sticky_sessions")
    if not isinstance(doc["policy"].get("response_cache", {}), dict):
        raise InputError(source, "expected a mapping", column="policy.response_cache")
    for i, m in enumerate(doc["models"]):
        for key, typ in _MODEL.items():
            if not isinstance(m.get(key), typ):
                raise InputError(
                    source, f"missing or wrong type of {key!r}", row=i + 1, column=f"models.{key}"
                )
        if len(m["rates"]) != 8 or len(m["standard_rates"]) != 8:
            raise InputError(source, "expected 8 rates", row=i + 1, column="models.rates")
    return doc


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate an artifact file (plain JSON parsing only)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(p), "file not found") from None
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(str(p), f"not JSON ({e})") from None
    return validate(doc, str(p))
