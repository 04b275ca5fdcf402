"""Export and the production runtime: artifact safety, LiteLLM config, light imports, parity."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from conftest import run_cli
from simroute.commands import export as export_cmd
from simroute.errors import ConfigError, InputError
from simroute.export import artifact
from simroute.policy.response_cache import CacheConfig, ResponseCache
from simroute.runtime import load_policy


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("run")
    proc = run_cli(["run", "workload.n_requests=3000", f"hydra.run.dir={d}"])
    assert proc.returncode == 0, proc.stderr
    return d


def _export(run_dir: Path, out: Path, fmt: str = "json") -> dict:
    proc = run_cli(["export", str(run_dir), "--out", str(out), "--format", fmt])
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def test_runtime_decisions_equal_the_simulators(run_dir: Path, tmp_path: Path) -> None:
    """Parity: every routed request of the run, replayed through the runtime with the label and
    local queue the simulated router saw, gets the same first tier and model — session stickiness
    included: the runtime hears of accepted first attempts when the simulation did."""
    doc = _export(run_dir, tmp_path / "p.json")
    assert doc["policy"]["sticky_sessions"] is True and doc["policy"]["response_cache"]["enabled"]
    policy = load_policy(tmp_path / "p.json")
    r = pl.read_parquet(run_dir / "requests.parquet")
    cache = ResponseCache(CacheConfig.from_config(doc["policy"]["response_cache"], doc["skills"]))
    lookup_s = cache.lookup_latency_s()  # what a miss waits before it is routed
    routed = r.filter(~pl.col("final_tier").is_in(["cache", "none"]))  # none: cancelled, never routed
    events = []  # (time, kind, row): bindings at answer time, routing after the cache lookup
    for row in routed.iter_rows(named=True):
        t = row["arrival_s"] + (lookup_s if row["cache_lookup"] == "miss" else 0.0)
        events.append((t, 1, row))
        accepted = row["outcome"] == "succeeded" or row["undetected_failure"]
        if row["attempts"] == 1 and accepted and row["outcome"] != "timed_out":
            events.append((row["arrival_s"] + row["e2e_s"], 0, row))
    events.sort(key=lambda e: (e[0], e[1], e[2]["request_id"]))
    decisions = {}
    mismatches = sticky = 0
    for _, kind, row in events:
        if kind == 0:
            policy.answered(row["session_id"], decisions[row["request_id"]])
            continue
        req = dict(row, skill=row["skill_pred"])
        d = policy.route(req, local_queue_len=row["local_queue_at_route"])
        decisions[row["request_id"]] = d
        sticky += d.reason.endswith("+sticky")
        mismatches += d.tier != row["first_tier"] or d.reason != row["route_reason"]
        if row["attempts"] == 1:  # then the first attempt's model is the final one
            mismatches += d.model != row["final_model"]
    assert mismatches == 0
    assert sticky > 100
    assert r.height == 3000 and routed.height < r.height


def test_litellm_config(run_dir: Path, tmp_path: Path) -> None:
    cfg = _export(run_dir, tmp_path / "l.yaml", "litellm")
    names = {m["model_name"] for m in cfg["model_list"]}
    assert "realtime/claude-sonnet-4-5" in names and "local/llama-3.1-8b-instruct" in names
    price = next(m for m in cfg["model_list"] if m["model_name"] == "realtime/gpt-4.1")["model_info"]
    assert price["input_cost_per_token"] == 2e-6
    assert {"local/llama-3.1-8b-instruct": ["realtime/claude-sonnet-4-5"]} in cfg["router_settings"][
        "fallbacks"
    ]
    assert cfg["litellm_settings"] == {"cache": True, "cache_params": {"type": "local", "ttl": 86400.0}}
    assert cfg["simroute"]["sticky_sessions"] is True


def test_tampered_or_wrong_version_artifacts_are_refused(run_dir: Path, tmp_path: Path) -> None:
    doc = _export(run_dir, tmp_path / "p.json")
    bad = dict(doc, policy={**doc["policy"], "router": {**doc["policy"]["router"], "overflow_queue": 1}})
    (tmp_path / "t.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="sha256 mismatch"):
        load_policy(tmp_path / "t.json")
    (tmp_path / "v.json").write_text(json.dumps(dict(doc, schema="simroute.policy/99")))
    with pytest.raises(InputError, match="unsupported artifact schema"):
        load_policy(tmp_path / "v.json")
    (tmp_path / "x.json").write_bytes(b"\x80\x04\x95 pickle bytes")
    with pytest.raises(InputError, match="not JSON"):
        load_policy(tmp_path / "x.json")


def test_runtime_imports_stay_light() -> None:
    code = (
        "import sys, simroute.runtime; heavy = [m for m in ('simpy', 'numba', 'polars', 'matplotlib', "
        "'hydra', 'omegaconf', 'tqdm') if m in sys.modules]; print(heavy); assert not heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_export_of_a_non_run_folder(tmp_path: Path) -> None:
    proc = run_cli(["export", str(tmp_path), "--out", str(tmp_path / "p.json")])
    assert proc.returncode == 2 and "policy_snapshot.json: not found" in proc.stderr


# -- integrity: sha256 (corruption) vs HMAC-SHA256 (tampering without the key) ---------------------

KEY = b"correct horse battery staple"


@pytest.fixture(scope="module")
def sealed(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An unsigned artifact of the module's run, exported in-process."""
    out = tmp_path_factory.mktemp("sealed") / "p.json"
    export_cmd.main([str(run_dir), "--out", str(out)])
    return dict(json.loads(out.read_text()))


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc, indent=1))
    return path


def test_signature_round_trip(sealed: dict[str, Any], tmp_path: Path) -> None:
    signed = artifact.sign(sealed, KEY)
    assert signed["sha256"] == sealed["sha256"]  # the signature does not change what sha256 covers
    assert artifact.canonical(signed) == artifact.canonical(sealed)
    assert len(signed["hmac_sha256"]) == 64
    assert artifact.validate(copy.deepcopy(signed), "mem", key=KEY) == signed
    path = _write(tmp_path / "s.json", signed)
    load_policy(path, key=KEY)
    load_policy(path, key=KEY.decode())  # a str key is its UTF-8 bytes
    load_policy(path)  # without a key a signed file loads on its sha256, like an unsigned one


def test_wrong_key_or_missing_signature_is_refused(sealed: dict[str, Any], tmp_path: Path) -> None:
    signed = _write(tmp_path / "s.json", artifact.sign(sealed, KEY))
    with pytest.raises(InputError, match=r"s\.json, column 'hmac_sha256': HMAC-SHA256 signature mismatch"):
        load_policy(signed, key=b"another key")
    unsigned = _write(tmp_path / "u.json", sealed)
    with pytest.raises(InputError, match=r"u\.json, column 'hmac_sha256': the artifact is not signed"):
        load_policy(unsigned, key=KEY)
    with pytest.raises(ConfigError, match="empty"):
        load_policy(signed, key=b"")
    bad = _write(tmp_path / "b.json", dict(artifact.sign(sealed, KEY), hmac_sha256=17))
    with pytest.raises(InputError, match="column 'hmac_sha256': expected a string"):
        load_policy(bad)


def test_sha256_does_not_stop_tampering_the_hmac_does(sealed: dict[str, Any], tmp_path: Path) -> None:
    """Whoever edits the file can recompute the sha256; without the key they cannot sign."""
    signed = artifact.sign(sealed, KEY)
    body = copy.deepcopy(signed)
    body["policy"]["router"]["overflow_queue"] = 10**6  # e.g. never overflow to the cloud
    forged = dict(artifact.seal(body), hmac_sha256=signed["hmac_sha256"])  # fresh sha256, old hmac
    path = _write(tmp_path / "t.json", forged)
    assert load_policy(path).doc["policy"]["router"]["overflow_queue"] == 10**6  # sha256 is fine
    with pytest.raises(InputError, match="HMAC-SHA256 signature mismatch"):
        load_policy(path, key=KEY)
    stripped = _write(tmp_path / "x.json", artifact.seal(body))  # or drop the signature altogether
    load_policy(stripped)
    with pytest.raises(InputError, match="not signed"):
        load_policy(stripped, key=KEY)


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        node = doc
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = value

    return mutate


BAD_FIELDS = [
    # (mutation, field path named in the error, message fragment)
    (_set(["models", 3, "rates", 1], float("nan")), "models[3].rates[1]", "NaN is not a finite number"),
    (_set(["policy", "risk", "bias"], float("inf")), "policy.risk.bias", "Infinity is not a finite number"),
    (
        _set(["models", 0, "expected_quality", "code_change"], float("-inf")),
        "models[0].expected_quality.code_change",
        "-Infinity is not a finite number",
    ),
    (_set(["models", 3, "rates", 1], "0.1"), "models[3].rates[1]", "expected a finite number >= 0"),
    (_set(["models", 3, "rates", 1], True), "models[3].rates[1]", "got true"),
    (_set(["models", 3, "standard_rates"], "cheap"), "models[3].standard_rates", "expected a list"),
    (_set(["models", 1, "rates"], [0.0] * 7), "models[1].rates", "expected 8 rates, got 7"),
    (
        _set(["models", 2, "expected_quality", "draft_reply"], 1.5),
        "models[2].expected_quality.draft_reply",
        "expected a probability (a number in [0, 1]), got the number 1.5",
    ),
    (
        _set(["models", 2, "expected_quality", "draft_reply"], "high"),
        "models[2].expected_quality.draft_reply",
        "expected a probability",
    ),
    (_set(["skills", 1], 7), "skills[1]", "expected a string, got the number 7"),
    (_set(["skills"], "draft_reply"), "skills", "expected a list"),
    (_set(["models", 2], "gpt-4.1"), "models[2]", "expected an object"),
    (_set(["policy", "router"], "rules"), "policy.router", "expected an object, got the string 'rules'"),
    (_set(["policy", "selector", "name"], 3), "policy.selector.name", "expected a string"),
    (_set(["policy", "sticky_sessions"], "yes"), "policy.sticky_sessions", "expected true or false"),
    (_set(["router_state"], [1, 2]), "router_state", "expected an object or null, got a list"),
]


@pytest.mark.parametrize(("mutate", "field", "message"), BAD_FIELDS, ids=[c[1] for c in BAD_FIELDS])
def test_bad_fields_give_one_clean_error_naming_the_field(
    sealed: dict[str, Any], tmp_path: Path, mutate: Callable[[dict[str, Any]], None], field: str, message: str
) -> None:
    doc = copy.deepcopy(sealed)
    mutate(doc)
    with pytest.raises(InputError) as via_validate:
        artifact.validate(copy.deepcopy(doc), "mem.json")
    finite = "finite number" not in message
    if finite:  # a fresh sha256, so that only the field can be at fault
        doc = artifact.seal(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))  # json writes NaN / Infinity / -Infinity for the non-finite
    with pytest.raises(InputError) as via_load:
        load_policy(path)
    for err, source in ((via_validate.value, "mem.json"), (via_load.value, str(path))):
        assert err.column == field and err.path == source
        assert str(err).startswith(f"{source}, column {field!r}: ") and message in str(err)
        assert "\n" not in str(err)


def test_non_finite_numbers_in_the_file_text_are_refused(sealed: dict[str, Any], tmp_path: Path) -> None:
    text = json.dumps(sealed, indent=1)
    assert '"overflow_queue": 64' in text
    for literal, message in (
        ("NaN", "NaN is not a finite number"),
        ("Infinity", "Infinity is not a finite number"),
        ("1e999", "Infinity is not a finite number (a number too large for a float"),
        ("9" * 400, "an integer too large for a float"),
    ):
        path = tmp_path / "n.json"
        path.write_text(text.replace('"overflow_queue": 64', f'"overflow_queue": {literal}'))
        with pytest.raises(InputError, match=r"column 'policy\.router\.overflow_queue': ") as err:
            load_policy(path)
        assert message in str(err.value)


def test_policy_arguments_of_the_wrong_type_are_clean_errors(sealed: dict[str, Any], tmp_path: Path) -> None:
    doc = copy.deepcopy(sealed)
    doc["policy"]["risk"]["bias"] = "high"
    path = _write(tmp_path / "a.json", artifact.seal(doc))
    with pytest.raises(InputError, match=r"a\.json, column 'policy\.risk': bad argument for risk"):
        load_policy(path)


# -- the export command: --sign / --key-file ----------------------------------------------------------


def test_export_command_signs_with_a_key_file_or_the_environment(
    run_dir: Path,
    sealed: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(artifact.KEY_ENV, raising=False)
    key_file = tmp_path / "policy.key"
    key_file.write_bytes(KEY + b"\n")  # as `echo ... > policy.key` writes it: the newline is dropped
    export_cmd.main([str(run_dir), "--out", str(tmp_path / "f.json"), "--key-file", str(key_file)])
    assert "signed HMAC-SHA256" in capsys.readouterr().out
    by_file = json.loads((tmp_path / "f.json").read_text())
    assert {k: v for k, v in by_file.items() if k != "hmac_sha256"} == sealed
    load_policy(tmp_path / "f.json", key=KEY)

    monkeypatch.setenv(artifact.KEY_ENV, KEY.decode())
    export_cmd.main([str(run_dir), "--out", str(tmp_path / "e.json"), "--sign"])
    assert json.loads((tmp_path / "e.json").read_text()) == by_file
    key_file.write_bytes(b"other key")  # --key-file wins over the environment
    export_cmd.main([str(run_dir), "--out", str(tmp_path / "o.json"), "--sign", "--key-file", str(key_file)])
    with pytest.raises(InputError, match="signature mismatch"):
        load_policy(tmp_path / "o.json", key=KEY)
    export_cmd.main([str(run_dir), "--out", str(tmp_path / "u.json")])  # no --sign: no signature
    assert "hmac_sha256" not in json.loads((tmp_path / "u.json").read_text())


def test_export_command_without_sign_writes_what_the_cli_writes(
    run_dir: Path, sealed: dict[str, Any], tmp_path: Path
) -> None:
    proc = run_cli(["export", str(run_dir), "--out", str(tmp_path / "cli.json")])
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "cli.json").read_text()) == sealed


@pytest.mark.parametrize(
    ("args", "env", "key_bytes", "message"),
    [
        (["--sign"], None, None, "--sign needs a key: give --key-file PATH or set SIMROUTE_POLICY_KEY"),
        (["--sign"], "", None, "SIMROUTE_POLICY_KEY is set but empty"),
        (["--key-file", "{tmp}/k"], None, b"\n", "the key is empty"),
        (["--key-file", "{tmp}/missing"], None, None, "cannot read it"),
        (["--sign", "--format", "litellm"], "k", None, "apply to --format json"),
    ],
    ids=["no-key", "empty-env", "empty-file", "missing-file", "litellm"],
)
def test_export_command_key_errors_are_clean(
    run_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: str | None,
    key_bytes: bytes | None,
    message: str,
) -> None:
    if env is None:
        monkeypatch.delenv(artifact.KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(artifact.KEY_ENV, env)
    if key_bytes is not None:
        (tmp_path / "k").write_bytes(key_bytes)
    argv = [str(run_dir), "--out", str(tmp_path / "p.json"), *(a.format(tmp=tmp_path) for a in args)]
    with pytest.raises(SystemExit) as exc:
        export_cmd.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("simroute: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "p.json").exists()


def test_export_command_refuses_a_non_finite_snapshot(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snap = json.loads((run_dir / "policy_snapshot.json").read_text())
    snap["models"][3]["rates"][1] = float("nan")
    (tmp_path / "policy_snapshot.json").write_text(json.dumps(snap))
    with pytest.raises(SystemExit) as exc:
        export_cmd.main([str(tmp_path), "--out", str(tmp_path / "p.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "policy_snapshot.json, column 'models[3].rates[1]': NaN is not a finite number" in err


def test_resolve_key(tmp_path: Path) -> None:
    (tmp_path / "crlf").write_bytes(b"secret\r\n")
    (tmp_path / "raw").write_bytes(b"\x00\xffsecret \n\n")  # only one line ending is dropped
    assert artifact.resolve_key(tmp_path / "crlf", env={}) == b"secret"
    assert artifact.resolve_key(tmp_path / "raw", env={}) == b"\x00\xffsecret \n"
    assert artifact.resolve_key(env={artifact.KEY_ENV: " s\u00e9cret\n"}) == " s\u00e9cret\n".encode()
    assert artifact.resolve_key(env={}) is None
    assert artifact.resolve_key(tmp_path / "crlf", env={artifact.KEY_ENV: "other"}) == b"secret"
    with pytest.raises(ConfigError, match="set but empty"):
        artifact.resolve_key(env={artifact.KEY_ENV: ""})
