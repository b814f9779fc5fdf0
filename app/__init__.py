"""HashInsight: contract-first CDC event bus for mining portfolio analytics."""

__version__ = "0.1.0"
