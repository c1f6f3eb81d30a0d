"""The schema compiler: the user's ``schema.graphql`` in, the compiled model out.

``load_schema`` validates the SDL and builds the model every other module derives its
shapes from; ``public_sdl`` prints the GraphQL API generated from that model.
"""

from chalicelib.schema.errors import Problem, SchemaError
from chalicelib.schema.loader import load_schema
from chalicelib.schema.sdl import public_sdl

__all__ = ["Problem", "SchemaError", "load_schema", "public_sdl"]
