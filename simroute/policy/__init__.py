"""Routing policies: classifier -> risk predictor -> router -> selector, plus escalation."""
