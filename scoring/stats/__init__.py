"""Statistics of the alignment measures: arrays in, numbers out, no Django.

- `distances`: Jensen–Shannon distance, total variation, Wasserstein-1 over a scale range.
- `alignment`: mean distance between people and a model with bootstrap intervals, and
  the split-half noise ceiling.
- `prediction`: third-person scores (1 − W1/range, 1 − JS, correlation of item means,
  log-likelihood gain of individual predictions).
- `pinocchio`: Π (first principal component of standardised scale scores) and item π_i.
- `likelihood`: participant NLL, pseudo-R² against a random chooser, Cohen's d.
"""
