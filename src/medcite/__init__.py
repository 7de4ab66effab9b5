"""medcite: a clinical evidence engine whose every statement cites its source passage."""

__version__ = "0.1.0"
