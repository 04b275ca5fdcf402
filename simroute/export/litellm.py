"""A LiteLLM Router config from an exported policy: model list with tiers and prices, fallbacks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def litellm_config(
    doc: Mapping[str, Any], local_api_base: str = "http://localhost:8000/v1"
) -> dict[str, Any]:
    """``model_list`` (one deployment per tier/model, with its per-token prices) and
    ``router_settings.fallbacks`` mirroring stronger-model escalation: every model falls back to the
    strongest real-time model. Batch deployments are listed for completeness (LiteLLM sends them
    through its ``/batches`` API, not the chat router). With the policy's response cache on,
    ``litellm_settings`` turns on LiteLLM's response cache with the simulated TTL (exact matches,
    in-memory ``local`` type; for the semantic part set ``cache_params.type: redis-semantic`` and a
    ``similarity_threshold`` of your own — simroute models its effect as ``semantic_correct``, not
    as a threshold)."""
    models = doc["models"]
    rt = [m for m in models if m["tier"] == "realtime"]

    def strength(m: Mapping[str, Any]) -> float:
        q = m["expected_quality"]
        return float(sum(q.values())) / max(len(q), 1)

    def name(m: Mapping[str, Any]) -> str:
        model, tier = str(m["model"]), str(m["tier"])
        return model if model.startswith(f"{tier}/") else f"{tier}/{model}"

    strongest = max(rt, key=strength) if rt else None
    model_list = []
    for m in models:
        params: dict[str, Any] = {"model": m["model"]}
        if m["tier"] == "local":
            params = {"model": f"hosted_vllm/{m['model'].split('/', 1)[-1]}", "api_base": local_api_base}
        model_list.append(
            {
                "model_name": name(m),
                "litellm_params": params,
                "model_info": {
                    "simroute_tier": m["tier"],
                    "price_mode": m["mode"],
                    "input_cost_per_token": m["rates"][0],
                    "output_cost_per_token": m["rates"][3],
                    "cache_read_input_token_cost": m["rates"][1],
                },
            }
        )
    fallbacks = []
    if strongest is not None:
        target = name(strongest)
        fallbacks = [{name(m): [target]} for m in models if name(m) != target and m["tier"] != "batch"]
    esc = doc["policy"]["escalation"]
    rc = doc["policy"].get("response_cache") or {}
    settings: dict[str, Any] = {}
    if rc.get("enabled"):
        settings = {"cache": True, "cache_params": {"type": "local", "ttl": float(rc.get("ttl_s", 86_400.0))}}
    return {
        "model_list": model_list,
        **({"litellm_settings": settings} if settings else {}),
        "router_settings": {"fallbacks": fallbacks, "num_retries": int(esc.get("max_attempts", 3)) - 1},
        "simroute": {
            "schema": doc["schema"],
            "sha256": doc["sha256"],
            "router": doc["policy"]["router"],
            "selector": doc["policy"]["selector"],
            "response_cache": rc,
            "sticky_sessions": bool(doc["policy"].get("sticky_sessions", False)),
        },
    }
