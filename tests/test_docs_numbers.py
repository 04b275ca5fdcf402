"""Every result number in the README is a reference to a stored output (issue 17).

``paper/templates/README.md`` renders to ``README.md`` (``experiments/paper/render.py``): (a) the
committed documents are exactly their templates rendered with the stored outputs; (b) the template's
own text — outside placeholders, fenced code blocks and inline code — holds no result-like number
(dollars, percentages, percentage points, seconds, GB, speed-ups) except the few configuration or
API constants allowed below; (c) a placeholder that does not resolve names the template and the key.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

CHECK_PAPER_TEMPLATE = True
"""Also apply (b) to ``paper/templates/paper.md`` (with :data:`PAPER_ALLOWED`)."""

RESULT_LIKE: dict[str, re.Pattern[str]] = {
    "dollars": re.compile(r"\$\s?\d"),
    "percent": re.compile(r"\d(?:[\d,.]*\d)?\s?%"),
    "percentage points": re.compile(r"\d(?:[\d,.]*\d)?\s?pp\b"),
    "time, memory or speed-up": re.compile(r"\d(?:[\d,.]*\d)?\s?(?:s|ms|µs|GB|GiB)\b|\d(?:[\d,.]*\d)?\s?×"),
}
"""Numbers that read like a measured or simulated result."""

ALLOWED: dict[str, str] = {
    "85 % GPT-4-judge agreement": "the published MT-Bench figure the verifier's default error rates are "
    "taken from (a cited source of an assumption, not a result of simroute)",
    "CPT(50 %/80 %)": "RouteLLM's metric names (cost to reach 50 % / 80 % of the quality gap)",
    "CPT(50 %)": "RouteLLM's metric name",
    "95 % t-interval": "the confidence level `simroute aggregate` reports (a definition)",
    "10–90 %": "the band the coverage is measured on (the fit's 10th to 90th percentile: a definition)",
    "≈2 GB": "download size of torch, a third-party package",
    "with 429s": "HTTP status 429 (rate limited), not seconds",
    "(70–80 % local, about 90 % cheaper, batch about 100× cheaper)": "the seed's claims, quoted",
}
"""Literal text a result-like pattern may match, with the reason it is not a result."""

PAPER_ALLOWED: dict[str, str] = {
    "70–80 %": "the seed's claim being tested (quoted, not a result)",
    "up to 90 %": "the seed's claim being tested",
    "about 90 %": "the seed's claim being tested",
    "A 90 % cut": "the seed's claim being tested",
    "100×": "the seed's claim being tested",
    "95 % Student-t": "the confidence level of the intervals (a definition)",
    "95 % intervals": "the confidence level of the intervals (a definition)",
    "85 % of votes": "the published MT-Bench agreement the judge's error rates come from (a cited source)",
    "≤ 5 % E2E and ≤ 10 % TTFT, none above 15 % E2E": "issue 15's targets (definitions)",
    "local share ≥ 70 %, cost cut ≥ 85 %,\n≥ 50×": "thresholds at which a claim counts as reached",
    "10–90 %": "the band the coverage is measured on (a definition)",
}
"""The paper template's allow-list (same rules)."""

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`]*`")


def _render_module() -> ModuleType:
    path = ROOT / "experiments" / "paper" / "render.py"
    spec = importlib.util.spec_from_file_location("paper_render", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


render = _render_module()


def literal_text(template: str) -> str:
    """The template without placeholders, fenced code blocks and inline code (each replaced by a space)."""
    text = render.PLACEHOLDER.sub(" ", template)
    text = FENCE.sub(" ", text)
    return INLINE_CODE.sub(" ", text)


def result_like_numbers(template: str, allow: dict[str, str] | None = None) -> list[str]:
    """``kind: context`` for each result-like number in the literal text that no allow-list entry
    (``allow``, default :data:`ALLOWED`) covers."""
    text = literal_text(template)
    entries = ALLOWED if allow is None else allow
    allowed = [(m.start(), m.end()) for entry in entries for m in re.finditer(re.escape(entry), text)]
    found = []
    for kind, pattern in RESULT_LIKE.items():
        for m in pattern.finditer(text):
            if not any(a <= m.start() and m.end() <= b for a, b in allowed):
                context = text[max(0, m.start() - 30) : m.end() + 10].replace("\n", " ")
                found.append(f"{kind}: …{context}…")
    return found


def _templates() -> list[str]:
    out = ["paper/templates/README.md"]
    if CHECK_PAPER_TEMPLATE and (ROOT / "paper" / "templates" / "paper.md").is_file():
        out.append("paper/templates/paper.md")
    return out


@pytest.mark.parametrize(("template", "target"), sorted(render.TARGETS.items()))
def test_committed_documents_are_their_templates_rendered(template: str, target: str) -> None:
    """Catches a README edited by hand, or a stored output regenerated without re-rendering."""
    text = render.render((ROOT / template).read_text(), template)
    assert text == (ROOT / target).read_text(), (
        f"{target} differs from {template} rendered with the stored outputs: "
        "run `python experiments/paper/render.py` (and edit the template, not the target)"
    )


@pytest.mark.parametrize("template", _templates())
def test_template_text_holds_no_result_numbers(template: str) -> None:
    """Catches a result typed into the template instead of a placeholder that reads it."""
    allow = PAPER_ALLOWED if template.endswith("paper.md") else ALLOWED
    found = result_like_numbers((ROOT / template).read_text(), allow)
    assert not found, f"{template}: result-like numbers outside placeholders:\n" + "\n".join(found)


def test_every_allowed_entry_is_still_used() -> None:
    """Catches an allow-list entry left behind after its text left the README template."""
    for name, entries in (("README.md", ALLOWED), ("paper.md", PAPER_ALLOWED)):
        text = literal_text((ROOT / "paper" / "templates" / name).read_text())
        assert [entry for entry in entries if entry not in text] == [], name


def test_the_check_catches_literal_results() -> None:
    """The pattern check finds typed results but not placeholders, code or allowed constants."""
    text = (
        "Costs $1,821 (66.1 %), −7.3 pp, 26.0 s, 1.0 GB, 1.93×. `12 %` and\n```\n$5\n```\n"
        "{{ paper/x.json | a | pct1 }} CPT(50 %)"
    )
    kinds = [f.split(":")[0] for f in result_like_numbers(text)]
    assert kinds == ["dollars", "percent", "percentage points"] + ["time, memory or speed-up"] * 3


@pytest.mark.parametrize(
    ("placeholder", "key"),
    [
        ("{{ paper/tier_economics.json | policies.no_such_policy.success_rate | pct1 }}", "no_such_policy"),
        ("{{ paper/router_sweep.csv | name=no_such_router : success_rate | pct1 }}", "no_such_router"),
        ("{{ paper/router_sweep.csv | name=all_realtime : no_such_column | pct1 }}", "no_such_column"),
        ("{{ paper/no_such_output.json | a | pct1 }}", "no_such_output"),
        ("{{ paper/tier_economics.json | requests | no_such_format }}", "no_such_format"),
    ],
)
def test_a_bad_placeholder_names_the_template_and_the_key(placeholder: str, key: str) -> None:
    with pytest.raises(render.RenderError) as exc:
        render.render(f"text\n{placeholder}\n", "paper/templates/README.md")
    assert "paper/templates/README.md" in str(exc.value) and key in str(exc.value)
