"""Writing artifacts safely: atomic file and folder writes, fixed-schema Parquet, CSV and Markdown
tables."""
