"""Deployment: the AWS resources the Chalice app needs, generated from the same schema
and settings the app runs on. Not part of the Lambda package (Chalice ships ``app.py``
and ``chalicelib/`` only)."""
