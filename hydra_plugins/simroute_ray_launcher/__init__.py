"""Hydra launcher plugin that sends each sweep job to an existing Ray cluster (``ray.remote``).

Selected with ``hydra/launcher=ray_cluster`` (``conf/hydra/launcher/ray_cluster.yaml``); needs the
``ray`` extra (``pip install 'simroute[ray]'``). Ray is imported only when a sweep is launched, so
Hydra's plugin scan works without it.
"""
