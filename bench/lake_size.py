"""Size of the Parquet file of a User whose ``name`` is 120 KB of repeated text.

One-row files carry no statistics and no dictionary page, so a long value is stored
once, SNAPPY-compressed. Target: at most 8 KB.
"""

from __future__ import annotations

from boto3.dynamodb.types import TypeDeserializer

from bench._lake import USER, user_image
from chalicelib.lake.columns import entity_table
from chalicelib.lake.parquet import encode_row

NAME_BYTES = 120 * 1024
TEXT = "The quick brown fox jumps over the lazy dog. "


def file_size(name: str) -> int:
    deserialize = TypeDeserializer().deserialize
    image = user_image(1, name=name)
    return len(encode_row(entity_table(USER), {k: deserialize(v) for k, v in image.items()}))


def main() -> None:
    name = (TEXT * (NAME_BYTES // len(TEXT) + 1))[:NAME_BYTES]
    size = file_size(name)
    print(f"name: {len(name.encode()):,} bytes of repeated text ({TEXT.strip()!r} ...)")
    print(f"file: {size:,} bytes = {size / 1024:.2f} KB (target <= 8 KB)")
    print(f"same user with a short name: {file_size('Ada Lovelace'):,} bytes")


if __name__ == "__main__":
    main()
