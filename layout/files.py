"""A file of the layout as bytes or a Parquet table: written so that readers see either nothing or the whole
file, read whole, deleted.

On a local or NFS path a file is written under a dot-prefixed temporary name (never read) and renamed; on
object stores a single PUT is already atomic. Parquet files all carry the same encodings (``parquet_options``).
"""
from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

ROW_GROUP_ROWS = 262144  # rows per Parquet row group, in part files and compacted files alike


def parquet_options(schema: pa.Schema) -> dict:
    """The Parquet writer settings of every file of the layout: zstd; dictionary encoding for the string
    columns only (ids, status, group names repeat; a float column's dictionary only fails and falls back,
    which tripled the write time); byte-stream-split for the float columns (smaller under zstd, and faster).
    Encodings only: the values and types are the schema's. Row groups: ``ROW_GROUP_ROWS``."""
    return dict(compression="zstd", use_dictionary=[f.name for f in schema if pa.types.is_string(f.type)],
                use_byte_stream_split=[f.name for f in schema if pa.types.is_floating(f.type)] or False)


def write_atomic(fs: pafs.FileSystem, path: str, data: pa.Table | bytes) -> None:
    """Write a table (as Parquet) or bytes to ``path`` so that readers see either nothing or the whole file."""
    parent, name = path.rsplit("/", 1)
    fs.create_dir(parent, recursive=True)

    def write(target: str) -> None:
        if isinstance(data, pa.Table):
            pq.write_table(data, target, filesystem=fs, row_group_size=ROW_GROUP_ROWS, **parquet_options(data.schema))
        else:
            with fs.open_output_stream(target) as f:
                f.write(data)

    if fs.type_name != "local":  # object stores: one PUT is atomic, and rename is a copy
        write(path)
        return
    tmp = f"{parent}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        write(tmp)
        fs.move(tmp, path)
    finally:
        if fs.get_file_info(tmp).type != pafs.FileType.NotFound:
            fs.delete_file(tmp)


def read_file(fs: pafs.FileSystem, path: str) -> bytes | None:
    """The bytes of ``path``, or None when there is no such file."""
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as f:
        return f.read()


def delete_file(fs: pafs.FileSystem, path: str) -> None:
    """Delete ``path`` if it is there."""
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_file(path)
