"""The vLLM V1 replica model: scheduler, KV blocks, prefix cache, step time — no SimPy inside."""
