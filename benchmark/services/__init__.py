"""Business logic of the benchmark app: views, admin, commands and actors call these."""
