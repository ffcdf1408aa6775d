"""Verifications that run the book; never on the data path.

- `parity`: the Rust kernel against the Python reference, frame by frame;
- `lobster`: a LOBSTER stream against LOBSTER's own orderbook file;
- `databento`: a Databento stream: uncrossed book, trades reconciled.
"""
