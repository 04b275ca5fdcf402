"""Picking an offer by expected quality: compiled (:mod:`simroute.compiled`), for the selectors and
escalation that pick one per request; the catalogue's :meth:`~simroute.policy.catalog.ModelCatalog.strongest`
is this."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar


class Rated(Protocol):
    """What a pick reads of an offer (:class:`~simroute.policy.catalog.Offer`)."""

    @property
    def expected_quality(self) -> Mapping[str, float]:
        """Expected success probability per skill."""
        ...


OfferT = TypeVar("OfferT", bound=Rated)


def strongest(offers: Sequence[OfferT], skill: str) -> OfferT:
    """The offer of highest expected quality for ``skill`` (``offers`` cheapest first, not empty):
    the first highest, as argmax picks it (a NaN counts as highest), so ties go to the cheapest."""
    best = offers[0]
    top = best.expected_quality[skill]
    for i in range(1, len(offers)):
        o = offers[i]
        q = o.expected_quality[skill]
        if not math.isnan(top) and (q > top or math.isnan(q)):
            best, top = o, q
    return best
