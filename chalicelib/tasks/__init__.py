"""SQL tasks (DESIGN §5): a ``@sql_query`` field run asynchronously by a query engine.

``engine`` is the interface both engines implement (Athena on AWS, DuckDB on the
embedded default); ``results`` turns an engine's text rows into GraphQL values.
"""
