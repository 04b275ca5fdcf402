"""simroute: a discrete-event simulator for router-first LLM agent architectures.

A request flows classifier -> risk predictor -> router -> selector -> tier (local GPUs, async batch
API, real-time API); outcomes come from a quality model with common random numbers, costs from the
real LiteLLM price table. See ``DESIGN`` notes in the README.
"""

from __future__ import annotations

import os
import sys

__version__ = "0.1.0"
__all__ = ["__version__"]


def _numba_cache_dir() -> str:
    """Where Numba's ``cache=True`` kernels are cached: ``$XDG_CACHE_HOME/simroute/numba``, else
    ``~/.cache/simroute/numba`` — not the package's ``__pycache__``, which may be read-only."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: the XDG default
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "simroute", "numba")


# Before any kernel module applies ``numba.njit(cache=True)`` (the cache location is fixed then);
# a user's own NUMBA_CACHE_DIR wins. Numba reads its environment at import, so if it was imported
# first, make it re-read (numba itself is not imported here: light entry points stay light).
if "NUMBA_CACHE_DIR" not in os.environ:
    os.environ["NUMBA_CACHE_DIR"] = _numba_cache_dir()
    if "numba" in sys.modules:
        sys.modules["numba"].core.config.reload_config()

# Polars' allocator (jemalloc, whose options it reads from ``_RJEM_MALLOC_CONF`` when it first
# allocates) keeps freed pages for seconds by default; a large run frees its workload build's
# temporaries and then holds them as resident memory through the whole simulation (about 870 MiB
# at a million requests). Return them at once. A user's own setting wins; changes no result.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

# The compiled hot modules, where built and still matching their sources (see simroute.compiled);
# before any of them is imported.
from simroute import compiled as _compiled  # noqa: E402

_compiled.install()
