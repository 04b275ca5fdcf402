"""``simroute export RUN_DIR --out FILE [--format json|litellm] [--sign] [--key-file PATH]``.

Writes the run's policy as a versioned artifact sealed with its sha256 (which detects corruption,
not tampering), optionally signed with HMAC-SHA256 under a secret key (which detects modification
by anyone without the key); or as a LiteLLM Router config. See :mod:`simroute.export.artifact`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simroute.commands import fail
from simroute.errors import ConfigError, SimrouteError
from simroute.export import artifact
from simroute.export.litellm import litellm_config


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="simroute export", description="Export a run's policy for production.")
    ap.add_argument("run_dir", help="a simroute run output folder (holds policy_snapshot.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=("json", "litellm"), default="json")
    ap.add_argument(
        "--sign",
        action="store_true",
        help=f"add an HMAC-SHA256 signature (hmac_sha256) keyed by --key-file, else by ${artifact.KEY_ENV} "
        "(its value's UTF-8 bytes); verify with load_policy(path, key=...)",
    )
    ap.add_argument(
        "--key-file",
        metavar="PATH",
        help="file holding the signing key (its bytes, less one trailing newline); implies --sign",
    )
    return ap


def main(argv: list[str]) -> None:
    """Run ``simroute export`` with the arguments ``argv`` (the words after ``export``)."""
    a = _parser().parse_args(argv)
    signing = a.sign or a.key_file is not None
    key: bytes | None = None
    try:
        if signing:
            if a.format != "json":
                raise ConfigError(
                    "--sign and --key-file apply to --format json (a LiteLLM config is not signed)"
                )
            key = artifact.resolve_key(a.key_file)
            if key is None:
                raise ConfigError(
                    f"--sign needs a key: give --key-file PATH or set {artifact.KEY_ENV} in the environment"
                )
    except SimrouteError as e:
        fail(e)
    snap = Path(a.run_dir) / "policy_snapshot.json"
    try:
        try:
            text = snap.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SimrouteError(f"{snap}: not found (is {a.run_dir} a simroute run folder?)") from None
        except (OSError, UnicodeDecodeError) as e:
            raise SimrouteError(f"{snap}: cannot read it ({e})") from None
        body = artifact.loads(text, str(snap))
        doc = artifact.validate(
            artifact.seal(
                {
                    "source_run": str(Path(a.run_dir).name),
                    "skills": body["skills"],
                    "policy": body["policy"],
                    "models": body["models"],
                    "router_state": body.get("router_state"),
                }
            ),
            str(snap),
        )
        if key is not None:
            doc = artifact.sign(doc, key)
    except (KeyError, TypeError, AttributeError) as e:
        fail(SimrouteError(f"{snap}: missing or malformed field {e}"))
    except SimrouteError as e:
        fail(e)
    out = doc if a.format == "json" else litellm_config(doc)
    try:
        Path(a.out).write_text(json.dumps(out, indent=1, sort_keys=a.format == "json") + "\n")
    except OSError as e:
        fail(SimrouteError(f"{a.out}: cannot write it ({e.strerror or e})"))
    signed = "; signed HMAC-SHA256" if key is not None else ""
    print(f"wrote {a.out} ({a.format}; sha256 {doc['sha256'][:16]}...{signed})")
