"""The benchmark's data: vendored upstream files and their checksums, record validation, Parquet
splits, the shift registry, (preferred, dispreferred) pairs and the data audit."""
