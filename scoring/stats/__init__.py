"""Statistics of the alignment measures: arrays in, numbers out, no Django.

- `distances`: Jensen–Shannon distance, total variation, Wasserstein-1 over a scale range.
- `alignment`: mean distance between people and a model with bootstrap intervals, per-item
  effective sample sizes, and the split-half distance (not a bound).
- `reference`: the population reference (what a model that is the population scores at
  this sample size) and a bias-corrected distance with a calibrated interval.
- `prediction`: third-person scores (1 − W1/range, 1 − JS, correlation of item means,
  log-likelihood gain of individual predictions).
- `pinocchio`: Π (first principal component of standardised scale scores) and item π_i.
- `likelihood`: participant NLL, pseudo-R² against a random chooser, Cohen's d.
"""
