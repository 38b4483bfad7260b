"""Touching the process-wide state of routing: breakers, and later limits and budgets."""
