"""The results layout, owned here and nowhere else: where a results location's files live, how each is named,
written and read. Below both ``trainers`` (which writes rows) and ``analysis`` (which reads them): it imports
only pyarrow and the standard library.

    location    a results location (a local path or a URI such as ``s3://bucket/x``) -> (filesystem, root)
    paths       the names under it: sweep folders, sweep.json, checkpoints, the searcher's state, the lease,
                the stop request, table folders and their part files
    files       how every file is written (atomically; Parquet with the layout's settings), read and deleted
    checkpoints a trial's checkpoint file, beside its rows
    schemas     the tables: one pyarrow schema per table, declared once
    tables      a table's files as every reader takes them, and reading their rows
    damage      damaged files named in one line (copied parts, unreadable Parquet)
    sweep_json  a sweep's sweep.json, read and written
    sweeps      the sweeps under a location, and the latest sweep of a name
"""
