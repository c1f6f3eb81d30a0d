"""The data lake (DESIGN §4): Parquet files on S3 mirrored from the table's stream.

``columns`` maps schema types to lake columns, ``parquet`` writes the files (the only
pyarrow importer, loaded by ``stream`` on first use), ``objects`` is where they land,
``stream`` turns stream batches into writes, and ``catalog`` describes the files to Glue.
"""
