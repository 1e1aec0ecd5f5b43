"""Imports of client and operation files.

`reader` reads the file (encodings, XLSX, the limits that protect the worker), `mapping` guesses
which column holds which field, `rows` puts each row through the row rules (`saas/clients/rules.py`,
in a forked child for big files), `bulk` is the set-based SQL twin of those rules for client files,
`service` holds the upload, the dry run, the run and the undo, `routes` the pages and `jobs` the
worker's entry point.
"""
