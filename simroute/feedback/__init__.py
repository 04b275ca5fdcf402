"""Multi-day dynamics: the nightly evaluator, distillation into local models, the multi-day runner."""
