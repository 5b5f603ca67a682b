"""lossbench: benchmark and statistics suite for classification losses."""

__version__ = "0.1.0"
