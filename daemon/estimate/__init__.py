"""Wait estimation: the estimator (model) with its learned data, fitted laws, forward simulation,
per-ticket estimates, staffing advice and Prometheus export; its lane, Erlang maths, the classic
predictors, off-peak guidance."""
