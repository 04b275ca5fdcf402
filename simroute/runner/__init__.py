"""Running experiments above ``sim`` and ``analysis``: one run (a policy and its baseline), multi-day runs."""
