"""Support shared by the tests and the benchmarks, outside the package (nothing here ships):
``models`` builds real exported TRMs with random weights, and realistic sample alerts."""
