"""The policy artifact: everything production needs to make the simulated decisions.

Schema ``simroute.policy/1`` (JSON, no code, nothing executable)::

    {"schema": "simroute.policy/1", "simroute_version": "...", "source_run": "...",
     "skills": [...],                       # skill names (label vocabulary)
     "policy": {classifier, risk, router, selector, escalation, verifier,   # {name: ..., args}
                "response_cache": {enabled, ...}, "sticky_sessions": bool},     # optional
     "models": [{"model", "tier", "mode", "rates": [8 floats], "standard_rates": [...],
                 "expected_quality": {skill: p}}],
     "router_state": {...} | null,          # learned state (e.g. a calibrated threshold)
     "sha256": "...",                       # hex SHA-256 of the canonical body (see canonical())
     "hmac_sha256": "..."}                  # optional: hex HMAC-SHA256 of the same bytes, keyed

Integrity, stated exactly:

* ``sha256`` detects accidental corruption (a truncated copy, a flipped byte, a hand edit that
  forgot to update it). It is **not** a protection against tampering: anyone who can edit the file
  can recompute it.
* ``hmac_sha256`` (added by :func:`sign`, checked when a key is given to :func:`validate`,
  :func:`load` or :func:`simroute.runtime.load_policy`) detects any modification of the covered
  bytes by someone who does not hold the secret key. It does not hide the content, and it does not
  protect against anyone who holds the key. Without a key it is not checked at all.

Both cover the same bytes, :func:`canonical`: the parsed content re-serialised as JSON, every
top-level field except ``sha256`` and ``hmac_sha256`` themselves (sorted keys, no spaces). So the
spelling of the file on disk (whitespace, key order, ``1.10`` vs ``1.1``, string escapes) is not
covered: it does not change what is loaded; every value that is loaded is.

Reading is strict: ``NaN``, ``Infinity`` and numbers that overflow to infinity are refused, and every
field the runtime uses is type-checked, each failure an :class:`~simroute.errors.InputError` naming
the file and the field path (``models[3].rates[1]``; list indices count from 0).

This module has no heavy imports (standard library only): the runtime uses it to verify artifacts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from simroute import __version__
from simroute.errors import ConfigError, InputError

SCHEMA = "simroute.policy/1"
SIGNATURE_FIELD = "hmac_sha256"
"""Top-level field holding the hex HMAC-SHA256 signature."""
KEY_ENV = "SIMROUTE_POLICY_KEY"
"""Environment variable :func:`resolve_key` reads the signing key from."""
POLICY_LAYERS = ("classifier", "risk", "router", "selector", "escalation", "verifier")
N_RATES = 8
_UNCOVERED = ("sha256", SIGNATURE_FIELD)
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
_TYPE_NAMES = {dict: "an object", list: "a list", str: "a string", bool: "true or false"}


# -- hashing and signing ----------------------------------------------------------------------------


def canonical(doc: Mapping[str, Any]) -> bytes:
    """The bytes the ``sha256`` and ``hmac_sha256`` fields cover.

    The JSON of ``doc`` without its ``sha256`` and ``hmac_sha256`` fields: keys sorted at every
    level, separators ``","`` and ``":"`` (no spaces), non-ASCII escaped, NaN/Infinity refused
    (``ValueError``), encoded as UTF-8.
    """
    body = {k: v for k, v in doc.items() if k not in _UNCOVERED}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def seal(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the schema, version and sha256 to an artifact body (a new dict; any old
    ``hmac_sha256`` is dropped: re-sign after sealing). NaN/Infinity: InputError naming the field."""
    check_finite(doc, "<policy artifact>")
    doc = {k: v for k, v in doc.items() if k != SIGNATURE_FIELD}
    doc = {**doc, "schema": SCHEMA, "simroute_version": __version__}
    doc["sha256"] = hashlib.sha256(canonical(doc)).hexdigest()
    return doc


def key_bytes(key: bytes | bytearray | memoryview | str) -> bytes:
    """A signing key as bytes: bytes-like values as they are, a ``str`` as its UTF-8 encoding
    (``surrogateescape``, so a value read from ``os.environ`` gives back the raw bytes on POSIX).
    An empty key is a :class:`~simroute.errors.ConfigError`."""
    if isinstance(key, str):
        out = key.encode("utf-8", "surrogateescape")
    elif isinstance(key, bytes | bytearray | memoryview):
        out = bytes(key)
    else:
        raise TypeError(f"a signing key must be bytes or str, not {type(key).__name__}")
    if not out:
        raise ConfigError("the signing key is empty")
    return out


def signature(doc: Mapping[str, Any], key: bytes | str) -> str:
    """Hex HMAC-SHA256 of :func:`canonical` ``(doc)`` under ``key`` (see :func:`key_bytes`)."""
    return hmac.new(key_bytes(key), canonical(doc), hashlib.sha256).hexdigest()


def sign(doc: Mapping[str, Any], key: bytes | str) -> dict[str, Any]:
    """A copy of the sealed artifact ``doc`` with an ``hmac_sha256`` field added.

    The signature covers exactly what ``sha256`` covers (:func:`canonical`: every top-level field
    but ``sha256`` and ``hmac_sha256``), so the existing ``sha256`` stays valid and an unsigned
    reader still loads the file. Call it after :func:`seal`; re-signing replaces the old signature.
    """
    return {**doc, SIGNATURE_FIELD: signature(doc, key)}


def verify_signature(doc: Mapping[str, Any], key: bytes | str, source: str) -> None:
    """Refuse ``doc`` (:class:`~simroute.errors.InputError`) unless its ``hmac_sha256`` is the
    signature of its content under ``key`` (constant-time comparison)."""
    got = doc.get(SIGNATURE_FIELD)
    if got is None:
        raise InputError(
            source,
            "the artifact is not signed, but a key was given: refusing it "
            "(export it with `simroute export --sign`, or load it without a key)",
            column=SIGNATURE_FIELD,
        )
    if not isinstance(got, str):
        raise InputError(source, f"expected a hex string, got {_json_type(got)}", column=SIGNATURE_FIELD)
    want = signature(doc, key)
    if not hmac.compare_digest(got.encode("utf-8", "surrogateescape"), want.encode()):
        raise InputError(
            source,
            "HMAC-SHA256 signature mismatch: the artifact was modified after signing, "
            "or it was signed with a different key",
            column=SIGNATURE_FIELD,
        )


def resolve_key(key_file: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key: from ``key_file`` if given, else from ``$SIMROUTE_POLICY_KEY``, else None.

    * Key file: its bytes exactly as stored, less one trailing line ending (``\\n`` or ``\\r\\n``),
      so that ``echo secret > key`` and ``SIMROUTE_POLICY_KEY=secret`` give the same key
      ``b"secret"``. Nothing else is stripped or decoded (a binary key works).
    * Environment variable (``env``, default :data:`os.environ`): the value's UTF-8 bytes, exactly
      (no stripping; on POSIX the raw bytes of the variable). Unset means "no key" (None).

    A key file that cannot be read, and an empty key (empty file, a file holding only a line
    ending, a variable set to the empty string), are :class:`~simroute.errors.ConfigError`.
    """
    if key_file is not None:
        p = Path(key_file)
        try:
            raw = p.read_bytes()
        except OSError as e:
            raise ConfigError(f"key file {p}: cannot read it ({e.strerror or e})") from None
        if raw.endswith(b"\r\n"):
            raw = raw[:-2]
        elif raw.endswith(b"\n"):
            raw = raw[:-1]
        if not raw:
            raise ConfigError(f"key file {p}: the key is empty")
        return raw
    value = (os.environ if env is None else env).get(KEY_ENV)
    if value is None:
        return None
    if not value:
        raise ConfigError(f"{KEY_ENV} is set but empty: an empty key is not a key")
    return key_bytes(value)


# -- strict reading ---------------------------------------------------------------------------------


class _NonFinite:
    """What ``NaN``/``Infinity``/``-Infinity`` parse to, so validation can name their field."""

    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the string {v[:40]!r}"
    if isinstance(v, _NonFinite):
        return v.token
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return type(v).__name__


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _fits_float(v: int) -> bool:
    try:
        float(v)
    except OverflowError:
        return False
    return True


def check_finite(value: Any, source: str, path: str = "") -> None:
    """Refuse NaN, +-Infinity and numbers too large for a float anywhere in ``value``
    (:class:`~simroute.errors.InputError` naming the field path)."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, v = stack.pop()
        bad = None
        if isinstance(v, _NonFinite):
            bad = f"{v.token} is not a finite number"
        elif isinstance(v, float) and not math.isfinite(v):
            if math.isnan(v):
                bad = "NaN is not a finite number"
            else:  # written as (-)Infinity, or a literal too large for a float
                sign = "-" if v < 0 else ""
                bad = f"{sign}Infinity is not a finite number (a number too large for a float reads as it)"
        elif isinstance(v, int) and not isinstance(v, bool) and not _fits_float(v):
            bad = "an integer too large for a float"
        if bad is not None:
            raise InputError(
                source, f"{bad}; the artifact carries finite numbers only", column=where or "<top>"
            )
        if isinstance(v, dict):
            stack.extend((_child(where, str(k)), x) for k, x in reversed(v.items()))
        elif isinstance(v, list):
            stack.extend((_child(where, i), x) for i, x in reversed(list(enumerate(v))))


def loads(text: str, source: str) -> Any:
    """Parse JSON strictly: InputError for text that is not JSON, and for NaN/Infinity (which
    Python's ``json`` accepts by default) naming the field they are in."""
    try:
        value = json.loads(text, parse_constant=_NonFinite)
    except RecursionError:
        raise InputError(source, "not JSON (nested too deeply)") from None
    except ValueError as e:
        raise InputError(source, f"not JSON ({e})") from None
    check_finite(value, source)
    return value


def read_json(path: str | Path) -> Any:
    """Read a JSON file with :func:`loads` (InputError if missing, unreadable or not UTF-8)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(p), "file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(str(p), f"not JSON ({e})") from None
    except OSError as e:
        raise InputError(str(p), f"cannot read it ({e.strerror or e})") from None
    return loads(text, str(p))


# -- validation -------------------------------------------------------------------------------------


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _expect(source: str, path: str, v: Any, typ: Any) -> None:
    if not isinstance(v, typ):
        names = " or ".join(
            _TYPE_NAMES.get(t, "null" if t is type(None) else t.__name__) for t in _tuple(typ)
        )
        raise InputError(source, f"expected {names}, got {_json_type(v)}", column=path)


def _tuple(typ: Any) -> tuple[type, ...]:
    return typ if isinstance(typ, tuple) else (typ,)


def _check_models(doc: Mapping[str, Any], source: str) -> None:
    skills = doc["skills"]
    if not doc["models"]:
        raise InputError(source, "expected at least one model", column="models")
    for i, m in enumerate(doc["models"]):
        at = f"models[{i}]"
        _expect(source, at, m, dict)
        for key in ("model", "tier", "mode"):
            if key not in m:
                raise InputError(source, "missing field", column=f"{at}.{key}")
            _expect(source, f"{at}.{key}", m[key], str)
        for key in ("rates", "standard_rates"):
            if key not in m:
                raise InputError(source, "missing field", column=f"{at}.{key}")
            rates = m[key]
            _expect(source, f"{at}.{key}", rates, list)
            if len(rates) != N_RATES:
                raise InputError(source, f"expected {N_RATES} rates, got {len(rates)}", column=f"{at}.{key}")
            for j, r in enumerate(rates):
                if not _number(r) or r < 0:
                    raise InputError(
                        source,
                        f"expected a finite number >= 0 (USD per token), got {_json_type(r)}",
                        column=f"{at}.{key}[{j}]",
                    )
        cap = m.get("capacity", 0)
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise InputError(
                source,
                f"expected an integer >= 0 (concurrent requests), got {_json_type(cap)}",
                column=f"{at}.capacity",
            )
        if "expected_quality" not in m:
            raise InputError(source, "missing field", column=f"{at}.expected_quality")
        q = m["expected_quality"]
        _expect(source, f"{at}.expected_quality", q, dict)
        for skill, p in q.items():
            if not _number(p) or not 0.0 <= p <= 1.0:
                raise InputError(
                    source,
                    f"expected a probability (a number in [0, 1]), got {_json_type(p)}",
                    column=_child(f"{at}.expected_quality", skill),
                )
        missing = [s for s in skills if s not in q]
        if missing:
            raise InputError(
                source,
                f"no value for skill(s) {missing} (every skill needs one)",
                column=f"{at}.expected_quality",
            )


def validate(doc: Any, source: str, key: bytes | str | None = None) -> dict[str, Any]:
    """Check an artifact; return it, or raise :class:`~simroute.errors.InputError` naming ``source``
    and the offending field.

    Checked in this order: finite numbers everywhere, schema, top-level field types, the simroute
    major version, the fields below the top level (``skills`` a list of strings, policy layers
    ``{name: str, ...}``, ``sticky_sessions`` a boolean, ``response_cache`` an object, each model's
    strings, 8 finite non-negative ``rates`` and ``standard_rates``, ``expected_quality`` a
    probability for every skill), the ``sha256`` (of :func:`canonical`), and, only when ``key`` is
    given, the ``hmac_sha256`` signature (missing or wrong: refused). Without a key a signed
    artifact is accepted on its sha256 alone, exactly like an unsigned one. An empty ``key`` is a
    :class:`~simroute.errors.ConfigError`.
    """
    if key is not None:
        key = key_bytes(key)  # an empty key is an error before anything is read
    if not isinstance(doc, dict):
        raise InputError(source, "expected a JSON object (a simroute policy artifact)")
    check_finite(doc, source)
    if doc.get("schema") != SCHEMA:
        raise InputError(
            source,
            f"unsupported artifact schema {doc.get('schema')!r}; this simroute reads {SCHEMA!r}",
            column="schema",
        )
    for field, typ in _TOP.items():
        if field not in doc:
            raise InputError(source, "missing field", column=field)
        _expect(source, field, doc[field], typ)
    major = doc["simroute_version"].split(".")[0]
    if major != __version__.split(".")[0]:
        raise InputError(
            source,
            f"artifact made by simroute {doc['simroute_version']}, this is {__version__}",
            column="simroute_version",
        )
    if SIGNATURE_FIELD in doc:
        _expect(source, SIGNATURE_FIELD, doc[SIGNATURE_FIELD], str)
    for i, s in enumerate(doc["skills"]):
        _expect(source, f"skills[{i}]", s, str)
    pol = doc["policy"]
    for layer in POLICY_LAYERS:
        at = f"policy.{layer}"
        if layer not in pol:
            raise InputError(source, "missing field (expected {name: ..., args})", column=at)
        _expect(source, at, pol[layer], dict)
        if "name" not in pol[layer]:
            raise InputError(source, "missing field", column=f"{at}.name")
        _expect(source, f"{at}.name", pol[layer]["name"], str)
    for flag in ("sticky_sessions", "provision_local"):
        if flag in pol:
            _expect(source, f"policy.{flag}", pol[flag], bool)
    if "response_cache" in pol:
        _expect(source, "policy.response_cache", pol["response_cache"], dict)
    _check_models(doc, source)
    want = hashlib.sha256(canonical(doc)).hexdigest()
    if doc["sha256"] != want:
        raise InputError(source, "sha256 mismatch: the artifact was modified after export", column="sha256")
    if key is not None:
        verify_signature(doc, key, source)
    return doc


def load(path: str | Path, key: bytes | str | None = None) -> dict[str, Any]:
    """Read and validate an artifact file (plain, strict JSON parsing only; see :func:`validate`,
    ``key`` included)."""
    return validate(read_json(path), str(Path(path)), key=key)
