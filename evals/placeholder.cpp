// Replaced by the suites.
