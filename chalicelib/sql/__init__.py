"""The SQL of ``@sql_query``: placeholders, the two join-table statements, and analysis.

``placeholders`` and ``statements`` are plain Python; ``analysis`` needs sqlglot (slow to
import), so it is imported only where SQL is actually parsed.
"""
