"""Feature statistics, data validation and drift: pure computations over Arrow batches."""
